"""Tabular sources, files of human-curated examples (the Aya collection's shape): one row, one
candidate response. Each file format is a ``TabularFormat`` in a module of its own (``jsonl.py``,
``parquet.py``; ``formats.py`` lists them): how a file is cut into pieces for workers, how a
piece's rows (or, for a columnar format, its table) are read, which columns the file has.

Only the columns a source needs are read (its text, id, language and ``where`` fields). Every
row keeps its 0-based position in its file, so a record can say where it came from
(``source.row``).

The pure core (``row_verdict``) says what becomes of one row: a response text for a language, or
a reject reason. Rows of a language the run does not ask for are not ours and are only counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# Reasons a row is rejected before selection sees it.
INVALID_JSON = "invalid_json"  # a JSONL line that is not a JSON object
MISSING_TEXT = "missing_text"  # the text field is absent or null in this row
TEXT_NOT_STRING = "text_not_string"
EMPTY_TEXT = "empty_text"  # only whitespace
UNKNOWN_LANGUAGE = "unknown_language"  # the language field's value maps to no language we know
FILTERED_OUT = "filtered_out"  # the row fails the source's ``where`` filters
OTHER_LANGUAGE = "other_language"  # a known language this run does not ask for: not a reject


class Row(NamedTuple):
    file: str  # the file's path
    row: int  # 0-based position of the row in its file
    fields: dict[str, Any]  # the columns the source needs


class Rejected(NamedTuple):
    """A row the format itself rejects: a JSONL line that is not a JSON object
    (``invalid_json``), or the partial one where a compressed file breaks (``input_truncated``,
    its ``detail`` the byte offsets, as for a CC-100 file)."""

    row: Row
    reason: str
    detail: dict | None = None


class UnreadableFile(RuntimeError):
    """A file its format cannot read at all (a 0-byte or cut Parquet file, whose footer holds
    its schema and row groups); the message names the file."""


class Verdict(NamedTuple):
    lang: str | None  # our language code, when the row has one
    text: str | None  # the response, when the row is kept
    reason: str | None  # why it is not, else None


class Spec(NamedTuple):
    """The fields of a tabular source that reading needs (from its config)."""

    text_field: str
    id_field: str | None = None
    lang_field: str | None = None
    lang_values: Mapping[str, str] = {}  # our code -> the value the source writes
    where: Mapping[str, Any] = {}  # column -> value, or list of values


def columns(spec: Spec) -> list[str]:
    """The columns to read, in a stable order."""
    names = [spec.text_field, spec.id_field, spec.lang_field, *spec.where]
    return list(dict.fromkeys(name for name in names if name))


def where_matches(fields: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Equality with a scalar, membership in a list, for every filter."""
    for column, wanted in where.items():
        value = fields.get(column)
        if isinstance(wanted, (list, tuple)):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def row_verdict(fields: Mapping[str, Any], spec: Spec, langs: Mapping[str, str], fixed_lang: str | None) -> Verdict:
    """What becomes of one row. ``langs`` maps the source's language values to our codes for the
    languages of the run; ``fixed_lang`` is the language of a file whose path names it (no
    language field)."""
    lang, reason = row_language(fields, spec, langs, fixed_lang)
    if reason:
        return Verdict(lang, None, reason)
    text, reason = text_verdict(fields.get(spec.text_field))
    return Verdict(lang, text, reason)


def row_language(
    fields: Mapping[str, Any], spec: Spec, langs: Mapping[str, str], fixed_lang: str | None
) -> tuple[str | None, str | None]:
    """(language, reason) of a row from its language field (or path) and ``where`` filters
    alone: the part of the verdict that depends on few, repeated values, so a reader can
    reuse it across rows (``key_columns``)."""
    lang = fixed_lang
    if spec.lang_field:
        value = fields.get(spec.lang_field)
        lang = langs.get(value) if isinstance(value, str) else None
        if lang is None:
            known = isinstance(value, str) and value in _all_values(spec)
            return None, OTHER_LANGUAGE if known else UNKNOWN_LANGUAGE
    if not where_matches(fields, spec.where):
        return lang, FILTERED_OUT
    return lang, None


def key_columns(spec: Spec) -> list[str]:
    """The columns ``row_language`` reads."""
    return list(dict.fromkeys(name for name in (spec.lang_field, *spec.where) if name))


def text_verdict(text: Any) -> tuple[str | None, str | None]:
    """(text, None) for a response, else (None, reason)."""
    if text is None:
        return None, MISSING_TEXT
    if not isinstance(text, str):
        return None, TEXT_NOT_STRING
    if not text.strip():
        return None, EMPTY_TEXT
    return text, None


def _all_values(spec: Spec) -> set[str]:
    """Every value the source may write for a CC-100 language: its explicit ``lang_values``,
    our codes, and the names, two-letter and script-tagged codes of the language registry."""
    from transforms.languages import LANGUAGES

    values = set(spec.lang_values.values())
    for lang in LANGUAGES.values():
        values.update(lang_value_aliases(lang))
    return values


def lang_value_aliases(lang) -> set[str]:
    """The values sources commonly write for ``lang``: our code (``tel``), CC-100's (``te``),
    NLLB's (``tel_Telu``), and the English name in lower case (``telugu``)."""
    return {lang.code, lang.cc100, lang.name.lower(), *([lang.nllb] if lang.nllb else [])}


def value_map(spec: Spec, run_langs) -> dict[str, str]:
    """The source's language value -> our code, for the languages of the run: ``lang_values``
    where given, else our own code."""
    return {spec.lang_values.get(lang.code, lang.code): lang.code for lang in run_langs}



def value_codes(table, names: list[str]) -> tuple[list[int], list[tuple]] | None:
    """For the columns ``names`` of a table: per row, the index of its tuple of values among
    the distinct tuples, and those tuples; without a Python object per row and value (columns
    such as language and task type hold few distinct values). None where a column cannot be
    dictionary-encoded (lists) or the tuples would overflow the codes."""
    import numpy as np
    import pyarrow as pa

    combined, dictionaries, size = np.zeros(table.num_rows, dtype=np.int64), [], 1
    for name in names:
        try:
            encoded = table.column(name).combine_chunks().dictionary_encode()
        except pa.ArrowNotImplementedError:
            return None
        values = [*encoded.dictionary.to_pylist(), None]
        size *= len(values)
        if size >= 2**62:
            return None
        combined = combined * len(values) + encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
        dictionaries.append(values)
    distinct, inverse = np.unique(combined, return_inverse=True)
    tuples = []
    for code in distinct.tolist():
        key = []
        for values in reversed(dictionaries):
            code, i = divmod(code, len(values))
            key.append(values[i])
        tuples.append(tuple(reversed(key)))
    return inverse.tolist(), tuples


Piece = tuple[int | None, int]  # (a piece of a file: a Parquet row group, None for a whole file; its first row)


@dataclass(frozen=True)
class TabularFormat:
    """A file format a tabular source may be (``kind`` in config). ``pieces(path)`` cuts a file
    into the units workers read; ``rows(path, piece, first, names, strict_input)`` yields a
    piece's rows with the columns ``names`` (a ``Row``, or a ``Rejected`` row; with
    ``strict_input`` a broken file raises instead, ``cc100.InputError``); a columnar format gives
    ``table(path, piece, names)`` too, a pyarrow Table the input layer judges by column.
    ``columns(path)``: the columns a file has, and ``required(spec)``: those every file must
    have, checked before any work. A file the format cannot read raises ``UnreadableFile``."""

    kind: str
    suffixes: tuple[str, ...]  # a seed file's format is known by its name
    pieces: Callable[[str], list[Piece]]
    rows: Callable[[str, int | None, int, list[str], bool], Iterator]
    columns: Callable[[str], set[str]]
    required: Callable[[Spec], list[str]]
    count_rows: Callable[[str], int]
    table: Callable[[str, int | None, list[str]], Any] | None = None
