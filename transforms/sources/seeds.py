"""Read the evol method's seed rows: JSONL or Parquet with ``instruction``, ``response``,
``lang``, optional ``task`` and ``id`` (CONTRACT.md; the natural method's output has this shape).

The rows come through ``transforms/sources/tabular.py``'s readers. Each row goes to a language
of the run: its own ``lang`` where that is one, else the language of the file when the input
path names it (``{lang}``), where ``seed_from_row`` then rejects it with its reason. A row of a
shared file (no ``{lang}`` in the path) whose ``lang`` is another language, missing or unknown
belongs to no language of the run: ``assign`` says why, and the shell counts it per reason
(``OUT/run.json``'s ``unassigned_seed_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.sources import tabular
from transforms.sources.formats import FORMATS, kind_of

SEED_FIELDS = ("instruction", "response", "lang", "task", "id")
SEED_LANG_MISMATCH = "seed_lang_mismatch"  # a row of a {lang} file whose lang is another language
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


def rows(path: str) -> Iterator[tuple[tabular.Row, str | None]]:
    """(row, None) for each row of a seed file, or (row, ``invalid_json``) for a JSONL line that
    is not an object."""
    fmt = FORMATS[kind_of(path)]
    names = [name for name in SEED_FIELDS if name in fmt.columns(path)] if fmt.table else list(SEED_FIELDS)
    for group, first in fmt.pieces(path):
        for item in fmt.rows(path, group, first, names):
            yield (item, None) if isinstance(item, tabular.Row) else item


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
        return None, "seed_missing_field"
    return None, "other_language" if lang in languages.LANGUAGES else "seed_lang_unknown"


def read_seeds(element: tuple[str | None, str], run_langs: list[str]) -> Iterator[tuple[str, dict]]:
    """A seed file -> (lang, row) for every row that goes to a language of the run, where a
    row is ``{"fields", "source"[, "reason"]}``: its seed columns, where it comes from, and the
    reason it is rejected before it is a seed (``invalid_json``, ``seed_lang_mismatch``)."""
    file_lang, path = element
    langs = set(run_langs)
    for row, reason in rows(path):
        source = {"name": SOURCE_NAME, "kind": kind_of(path), "file": path, "row": row.row}
        if reason and file_lang is None:
            Metrics.counter("seeds", f"unassigned.{reason}").inc()
            continue
        lang, why = assign(row.fields, file_lang, langs) if not reason else (file_lang, reason)
        if lang is None:
            Metrics.counter("seeds", f"unassigned.{why}").inc()
            continue
        item = {"fields": {**row.fields, "lang": lang} if why is None else row.fields, "source": source}
        if why:
            item["reason"] = why
        yield lang, item
