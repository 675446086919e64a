"""JSONL as a tabular source kind: a file (plain or compressed) is one piece, streamed line by
line by one worker through the CC-100 reader's ``InputFile`` (the same decompressors, so a cut
or corrupt ``.gz``/``.xz``/``.bz2``/``.zst`` file keeps the rows before the break and its
partial line is the reject ``input_truncated``, or, with ``strict_input``, the run fails). A
line that is not a JSON object is that row's reject, ``invalid_json``; blank lines are not rows.
A row is held whole (no ``max_line_bytes``): only some of its columns may be read."""

from __future__ import annotations

import json
from collections.abc import Iterator

from transforms.sources.cc100 import InputFile, broken_input
from transforms.sources.tabular import INVALID_JSON, Piece, Rejected, Row, Spec, TabularFormat


def pieces(path: str) -> list[Piece]:
    return [(None, 0)]


def read_jsonl(path: str, names: list[str], strict_input: bool = False) -> Iterator[Row | Rejected]:
    """The rows of a JSONL file (plain or compressed), with only the columns ``names``; a line
    that is not a JSON object, or the partial one where the file breaks, is a ``Rejected`` row
    (with ``strict_input`` a break raises ``cc100.InputError``). Blank lines are not rows."""
    with InputFile(path, None) as f:
        for i, line in enumerate(f.lines(decode=bytes)):
            if line.reason:  # input_truncated: the stream broke in this line
                if strict_input:
                    raise broken_input(path, line.detail)
                yield Rejected(Row(path, i, {}), line.reason, line.detail)
                continue
            if not line.text.strip():
                continue
            obj = _object(line.text)
            if obj is None:
                yield Rejected(Row(path, i, {}), INVALID_JSON)
                continue
            yield Row(path, i, {name: obj.get(name) for name in names if name in obj})


def jsonl_columns(path: str, rows: int = 100) -> set[str]:
    """The keys of a JSONL file's first ``rows`` objects: enough to name a missing text field
    before any work starts."""
    keys: set[str] = set()
    with InputFile(path, None) as f:
        for line in f.lines(decode=bytes):
            obj = None if line.reason else _object(line.text)
            if obj is not None:
                keys.update(obj)
                rows -= 1
                if not rows:
                    break
    return keys


def _object(raw: bytes) -> dict | None:
    """A line's JSON object, or None (not JSON, or not an object)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def count_rows(path: str) -> int:
    """Every row ``read_jsonl`` gives, rejected ones too."""
    with InputFile(path, None) as f:
        return sum(1 for line in f.lines(decode=bytes) if line.reason or line.text.strip())


def required(spec: Spec) -> list[str]:
    """A row may omit keys: every file must have the text and language fields only."""
    return [c for c in (spec.text_field, spec.lang_field) if c]


JSONL = TabularFormat(
    "jsonl",
    suffixes=(".jsonl", ".json", ".jsonl.gz", ".jsonl.xz", ".jsonl.bz2", ".jsonl.zst"),
    pieces=pieces,
    rows=lambda path, piece, first, names, strict_input: read_jsonl(path, names, strict_input),
    columns=jsonl_columns,
    required=required,
    count_rows=count_rows,
)
