"""Read the evol method's seed rows: JSONL or Parquet with ``instruction``, ``response``,
``lang``, optional ``task`` and ``id`` (CONTRACT.md; the natural method's output has this shape).

The rows come through ``transforms/sources/tabular.py``'s readers (a JSONL file through the
CC-100 reader's decompressors: a broken one ends with an ``input_truncated`` row, or fails the
run with ``strict_input``). Each row goes to a language of the run: its own ``lang`` where that
is one, else the language of the file when the input path names it (``{lang}``), where
``seed_from_row`` then rejects it with its reason. A row of a shared file (no ``{lang}`` in the
path) whose ``lang`` is another language the run does not ask for is not this run's: it is only
counted (``OUT/run.json``'s ``unassigned_seed_rows``). One with no or an unknown ``lang``, or a
line that is not JSON, belongs to no language at all, yet must be accounted for: it is rejected
under the run's first language (as the natural method's sources do), so every row read is a
seed or a reject line.
"""

from __future__ import annotations

from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.sources import tabular
from transforms.sources.formats import FORMATS, kind_of

SEED_FIELDS = ("instruction", "response", "lang", "task", "id")
SEED_LANG_MISMATCH = "seed_lang_mismatch"  # a row of a {lang} file whose lang is another language
# a shared file's row whose lang is missing, or none of our codes (``evol.seed_from_row``'s names)
SEED_MISSING_FIELD = "seed_missing_field"
SEED_LANG_UNKNOWN = "seed_lang_unknown"
OTHER_LANGUAGE = tabular.OTHER_LANGUAGE  # another language the run does not ask for: counted only
SOURCE_NAME = "seeds"


def seed_files(template: str, patterns: dict[str, str]) -> list[tuple[str | None, str]]:
    """(language of the file or None, path) for every file the language's ``patterns`` (from
    ``template``) match: a template with ``{lang}`` or ``{cc100}`` names each file's language;
    one without is a file shared by every language, whose rows say theirs."""
    per_lang = "{lang}" in template or "{cc100}" in template
    files = set()
    for lang, pattern in sorted(patterns.items()):
        for meta in FileSystems.match([pattern])[0].metadata_list:
            files.add((lang if per_lang else None, meta.path))
    return sorted(files, key=lambda f: (f[1], f[0] or ""))


def rows(path: str, strict_input: bool = False) -> Iterator[tabular.Row | tabular.Rejected]:
    """Each row of a seed file, or the reader's reject of it (``invalid_json``,
    ``input_truncated``)."""
    fmt = FORMATS[kind_of(path)]
    names = [name for name in SEED_FIELDS if name in fmt.columns(path)] if fmt.table else list(SEED_FIELDS)
    for group, first in fmt.pieces(path):
        yield from fmt.rows(path, group, first, names, strict_input)


def assign(fields: dict, file_lang: str | None, run_langs: set[str]) -> tuple[str | None, str | None]:
    """(language of the run the row goes to, or None; the reason it does not go to its own).
    A row of a ``{lang}`` file goes to that language whatever it says, to be kept or rejected
    there; a row of a shared file goes to its own ``lang`` if the run asks for it."""
    lang = fields.get("lang")
    lang = lang.strip() if isinstance(lang, str) else None
    if file_lang is not None:
        return file_lang, (SEED_LANG_MISMATCH if lang and lang != file_lang else None)
    if lang in run_langs:
        return lang, None
    from transforms import languages

    if not lang:
        return None, SEED_MISSING_FIELD
    return None, OTHER_LANGUAGE if lang in languages.LANGUAGES else SEED_LANG_UNKNOWN


def read_seeds(element: tuple[str | None, str], run_langs: list[str],
               strict_input: bool = False) -> Iterator[tuple[str, dict]]:
    """A seed file -> (lang, row) for every row but those of another language the run does not
    ask for (counted only), where a row is ``{"fields", "source"[, "reason", "detail"]}``: its
    seed columns, where it comes from, and why it is rejected before it is a seed
    (``invalid_json``, ``input_truncated``, ``seed_lang_mismatch``, and in a shared file
    ``seed_missing_field``, ``seed_lang_unknown``). A row of no language goes to the run's
    first. With ``strict_input`` a broken file raises ``cc100.InputError``."""
    file_lang, path = element
    langs = set(run_langs)
    for item in rows(path, strict_input):
        row, reason, detail = item if isinstance(item, tabular.Rejected) else (item, None, None)
        source = {"name": SOURCE_NAME, "kind": kind_of(path), "file": path, "row": row.row}
        lang = file_lang
        if not reason:
            lang, reason = assign(row.fields, file_lang, langs)
            detail = _detail(reason, row.fields)
        if reason == OTHER_LANGUAGE:
            Metrics.counter("seeds", f"unassigned.{reason}").inc()
            continue
        lang = lang or run_langs[0]  # a row of no language at all
        item = {"fields": {**row.fields, "lang": lang} if reason is None else row.fields, "source": source}
        if reason:
            item["reason"] = reason
        if detail:
            item["detail"] = detail
        yield lang, item


def _detail(reason: str | None, fields: dict) -> dict | None:
    """A shared file's row's reject detail, as ``evol.seed_from_row`` words it."""
    if reason == SEED_MISSING_FIELD:
        return {"field": "lang"}
    if reason == SEED_LANG_UNKNOWN:
        return {"lang": str(fields.get("lang"))[:40]}
    return None
