"""The natural method's input layer: every source of a run (config ``sources``: CC-100 text,
JSONL and Parquet files of human-curated examples) -> batches of ``Document``s for select.

A CC-100 file gives documents of paragraphs (``transforms/sources/cc100.py``). A tabular row
gives a one-paragraph document (its ``doc`` is the row's position in its file), so every
source flows through the same selection: filters, language ID, exact and near-duplicate
removal across all sources of a language, and the fragments' length limits; a row is never
joined with its neighbours. A row that cannot be a response (``tabular.row_verdict``: missing
or empty text, unknown language, ``where`` filters, invalid JSON, the partial line where a
compressed JSONL file breaks) becomes a document whose one paragraph the reader rejected, with
the reason, so select counts it like any other drop.

Which language a row is for comes from its path (``{lang}``) or its language field. A row of a
known language that the run does not ask for is not this run's: it is only counted (Beam
counter ``sources/{name}``, ``other_language``). A row with no language at all (an unknown
language value, a line that is not JSON) belongs to no language of the run, yet must be
accounted for: it is counted and rejected under the run's first language.

Files are found with Beam's filesystems (any of them: local, gs://, s3://). A Parquet file is
cut into its row groups, read by any worker and only for the columns the source needs; a JSONL
file is streamed by one worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import repeat
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.languages import Language
from transforms.sources import tabular
from transforms.sources.cc100 import (
    Document,
    ReadCC100,
    ReadPieces,
    batches,
    input_pattern,
    relative_name,
    template_dir,
)
from transforms.sources.config import ReadConfig, SourceConfig
from transforms.sources.formats import FORMATS

SHOWN_CHARS = 1000  # of a rejected row's non-string text, kept in its reject line


class TabularInput(NamedTuple):
    """One tabular source's files for this run: a pattern (per language when its path names
    the language) and how to read and judge its rows."""

    name: str
    kind: str  # jsonl or parquet
    pattern: str
    spec: tabular.Spec
    fixed_lang: str | None  # the language of every row (a path with {lang}); None: lang_field
    langs: dict[str, str]  # the source's language value -> our code, for the run's languages
    fallback_lang: str  # where rows of no language are counted: the run's first language
    strict_input: bool = False  # a broken file fails the run (``read.strict_input``)


def spec_of(source: SourceConfig) -> tabular.Spec:
    return tabular.Spec(source.text_field, source.id_field, source.lang_field,
                        dict(source.lang_values), dict(source.where))


def patterns(source: SourceConfig, langs: list[Language]) -> dict[str | None, str]:
    """Language code -> file pattern; a tabular source whose path does not name the language
    has one pattern for all of them (key None). A CC-100 file is one language's: a path that
    names none is read as each language's."""
    if source.per_lang_path or not source.tabular:
        return {lang.code: input_pattern(source.path, lang) for lang in langs}
    return {None: source.path}


def plan(sources: tuple[SourceConfig, ...], langs: list[Language], read: dict[str, ReadConfig]):
    """The run's inputs: (lang, pattern, read config, source name) per CC-100 source and
    language, for ``ReadCC100``; ``TabularInput``s for the rest."""
    cc100, tabulars = [], []
    for source in sources:
        if not source.tabular:
            cc100 += [(code, pattern, read[code], source.name) for code, pattern in patterns(source, langs).items()]
            continue
        spec = spec_of(source)
        values = tabular.value_map(spec, langs) if source.lang_field else {}
        for code, pattern in patterns(source, langs).items():
            # a file of every language is strict where any of them is
            strict = read[code].strict_input if code else any(r.strict_input for r in read.values())
            tabulars.append(TabularInput(source.name, source.kind, pattern, spec, code, values, langs[0].code,
                                         strict))
    return cc100, tabulars


# --- the pure core: one row -> a document, or nothing --------------------------------------


def _shown(value: Any) -> str:
    """A rejected row's text as its reject line shows it."""
    if value is None or isinstance(value, str):
        return (value or "").strip()
    return json.dumps(value, ensure_ascii=False, default=str)[:SHOWN_CHARS]


def _row_id(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int)) else str(value)


def _language(source: TabularInput, fields) -> tuple[str | None, str | None, dict | None]:
    """(language, reason, detail) of a row from its language and ``where`` fields."""
    lang, reason = tabular.row_language(fields, source.spec, source.langs, source.fixed_lang)
    detail = None
    if reason == tabular.UNKNOWN_LANGUAGE:
        detail = {"lang_value": _shown(fields.get(source.spec.lang_field))}
    return lang, reason, detail


def _document(source: TabularInput, file: str, position: int, text: Any, row_id: Any,
              judged: tuple[str | None, str | None, dict | None]) -> Document | None:
    lang, reason, detail = judged
    if reason == tabular.OTHER_LANGUAGE:
        return None
    if not reason:
        kept, reason = tabular.text_verdict(text)
        if not reason:
            return Document(lang, file, position, (kept.strip(),), (), source.name, source.kind, row_id)
    rejected = ((0, reason, detail),)
    return Document(lang or source.fallback_lang, file, position, (_shown(text),), rejected, source.name,
                    source.kind, row_id)


def row_document(source: TabularInput, file: str, row: tabular.Row, reason: str | None = None,
                 detail: dict | None = None) -> Document | None:
    """The document of one row (``reason``, ``detail``: the reader's, e.g. ``invalid_json``), or
    None for a row of a language the run does not ask for."""
    spec = source.spec
    row_id = _row_id(row.fields.get(spec.id_field)) if spec.id_field else None
    judged = (source.fixed_lang, reason, detail) if reason else _language(source, row.fields)
    return _document(source, file, row.row, row.fields.get(spec.text_field), row_id, judged)


class _Judge:
    """``_language`` of each distinct tuple of a source's language and ``where`` values, worked
    out once: a file holds few such tuples and many rows."""

    def __init__(self, source: TabularInput):
        self.source, self.columns, self.seen = source, tabular.key_columns(source.spec), {}

    def __call__(self, key: tuple):
        try:
            return self.seen[key]
        except KeyError:
            judged = self.seen[key] = _language(self.source, dict(zip(self.columns, key)))
            return judged
        except TypeError:  # an unhashable value (a JSON list): judged on its own
            return _language(self.source, dict(zip(self.columns, key)))


def piece_documents(source: TabularInput, path: str, name: str, group: int | None, first: int):
    """The documents of one piece's rows (``row_document`` of each), and None for each row of a
    language not asked for. A Parquet row group is read by column, for the columns the source
    needs only."""
    spec, judge = source.spec, _Judge(source)
    names = tabular.columns(spec)
    fmt = FORMATS[source.kind]
    if fmt.table is None:  # row by row
        for item in fmt.rows(path, group, first, names, source.strict_input):
            if isinstance(item, tabular.Rejected):
                yield row_document(source, name, *item)
                continue
            fields = item.fields
            row_id = _row_id(fields.get(spec.id_field)) if spec.id_field else None
            key = tuple(fields.get(column) for column in judge.columns)
            yield _document(source, name, item.row, fields.get(spec.text_field), row_id, judge(key))
        return
    import pyarrow as pa

    table = fmt.table(path, group, names)
    texts = table.column(spec.text_field).to_pylist()
    ids = repeat(None)
    if spec.id_field:
        column = table.column(spec.id_field)
        ids = column.to_pylist()
        if not (pa.types.is_string(column.type) or pa.types.is_integer(column.type)):
            ids = [_row_id(value) for value in ids]
    coded = tabular.value_codes(table, judge.columns)
    if coded is None:  # judged row by row
        keys = zip(*(table.column(column).to_pylist() for column in judge.columns)) if judge.columns else repeat(())
        judged = [judge(key) for key in keys]
    else:
        codes, tuples = coded
        verdicts = [judge(key) for key in tuples]
        judged = [verdicts[code] for code in codes]
    for i, (text, row_id, verdict) in enumerate(zip(texts, ids, judged)):
        yield _document(source, name, first + i, text, row_id, verdict)


def file_pieces(kind: str, path: str) -> list[tuple[int | None, int]]:
    """(piece, first row) of a file of format ``kind``: per Parquet row group, one (None, 0) for
    a JSONL file."""
    return FORMATS[kind].pieces(path)


def count_rows(kind: str, path: str) -> int:
    """The rows of a file of format ``kind``."""
    return FORMATS[kind].count_rows(path)


# --- the Beam shell ---------------------------------------------------------------------------


def _pieces(source: TabularInput, _parts: int) -> Iterator[tuple[TabularInput, str, str, int | None, int]]:
    """(source, path, name, row group, first row) per Parquet row group, or per JSONL file (a
    tabular file's pieces do not depend on the workers)."""
    base_dir = template_dir(source.pattern)
    for meta in FileSystems.match([source.pattern])[0].metadata_list:
        name = relative_name(meta.path, base_dir)
        for group, first in file_pieces(source.kind, meta.path):
            yield source, meta.path, name, group, first


def _read_rows(piece: tuple, batch_size: int):
    """A piece of a tabular source -> lists of up to ``batch_size`` documents."""
    other = Metrics.counter(f"sources/{piece[0].name}", tabular.OTHER_LANGUAGE)

    def of_run_languages(docs):
        for doc in docs:
            if doc is None:  # a row of a language the run does not read: counted only
                other.inc()
            else:
                yield doc

    yield from batches(of_run_languages(piece_documents(*piece)), batch_size)


class ReadTabular(ReadPieces):
    """``TabularInput``s -> lists of ``Document``s: pieces (Parquet row groups, JSONL files)
    spread over workers and read where they land."""

    def __init__(self, sources: list[TabularInput], batch_size: int = 128):
        super().__init__(sources, _pieces, _read_rows, batch_size)


class ReadSources(beam.PTransform):
    """Every source of the run -> lists of ``Document``s of any language."""

    def __init__(self, sources: tuple[SourceConfig, ...], langs: list[Language],
                 read: dict[str, ReadConfig], batch_size: int = 128):
        super().__init__()
        self.cc100, self.tabular = plan(sources, langs, read)
        self.batch_size = batch_size

    def expand(self, pbegin):
        parts = []
        if self.cc100:
            parts.append(pbegin | "CC100" >> ReadCC100(self.cc100, self.batch_size))
        if self.tabular:
            parts.append(pbegin | "Tabular" >> ReadTabular(self.tabular, self.batch_size))
        return parts | "AllSources" >> beam.Flatten()


# --- checks before any work -------------------------------------------------------------------


def stored_files(sources: tuple[SourceConfig, ...], langs: list[Language]) -> dict[str, list[tuple[str, int]]]:
    """Per language, (path, stored bytes) of every file it reads (a file of a tabular source
    without ``{lang}`` in its path counts for each language: it may hold any of them)."""
    files: dict[str, list[tuple[str, int]]] = {lang.code: [] for lang in langs}
    for source in sources:
        for code, pattern in patterns(source, langs).items():
            found = [(m.path, m.size_in_bytes) for m in FileSystems.match([pattern])[0].metadata_list]
            for lang in [code] if code else files:
                files[lang] += found
    return files


class SourceError(ValueError):
    """A source that cannot be read as configured (a usage error: exit 2 before any work)."""




def check(sources: tuple[SourceConfig, ...], langs: list[Language]) -> list[tuple[str, str]]:
    """Before any work: each tabular source has files, and every one of them, in sorted order,
    can be opened and has the columns the source names (Parquet: every one; JSONL, whose rows
    may omit keys: the text and language fields, among its first 100 objects). Raises
    ``SourceError`` naming the file; returns (lang, pattern) of the CC-100 sources' languages
    without files (the caller words that error)."""
    missing = []
    for source in sources:
        found = {}
        for code, pattern in patterns(source, langs).items():
            try:
                found[code] = FileSystems.match([pattern])[0].metadata_list
            except Exception as e:  # noqa: BLE001 - any filesystem error is a bad input here
                raise SourceError(f"source {source.name}: cannot read {pattern}: {e}") from e
        if not source.tabular:
            missing += [(code, patterns(source, langs)[code]) for code, files in found.items() if not files]
            continue
        files = sorted({m.path for code in found for m in found[code]})
        if not files:
            raise SourceError(f"source {source.name}: no files match {', '.join(sorted(set(patterns(source, langs).values())))}")
        fmt = FORMATS[source.kind]
        needed = fmt.required(spec_of(source))
        for path in files:
            _check_columns(source.name, fmt, path, needed)
    return missing


def _check_columns(name: str, fmt, path: str, needed: list[str]) -> None:
    """The file ``path`` of source ``name`` can be opened and has the columns ``needed``."""
    try:
        columns = fmt.columns(path)
    except tabular.UnreadableFile as e:
        raise SourceError(f"source {name}: {e}") from e
    absent = [c for c in needed if c not in columns]
    if columns and absent:
        raise SourceError(f"source {name}: {path} has no column {', '.join(absent)}; its columns: "
                          f"{', '.join(sorted(columns))}")
