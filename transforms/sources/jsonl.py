"""JSONL as a tabular source kind: a file (plain or compressed) is one piece, streamed line by
line by one worker; a line that is not a JSON object is that row's reject, ``invalid_json``;
blank lines are not rows."""

from __future__ import annotations

import json
from collections.abc import Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.sources.tabular import INVALID_JSON, Piece, Row, Spec, TabularFormat


def pieces(path: str) -> list[Piece]:
    return [(None, 0)]


def read_jsonl(path: str, names: list[str]) -> Iterator[Row | tuple[Row, str]]:
    """The rows of a JSONL file (plain or compressed), with only the columns ``names``; a line
    that is not a JSON object comes as ``(row, INVALID_JSON)``. Blank lines are not rows."""
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        for i, raw in enumerate(iter(f.readline, b"")):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                yield Row(path, i, {}), INVALID_JSON
                continue
            yield Row(path, i, {name: obj.get(name) for name in names if name in obj})


def jsonl_columns(path: str, rows: int = 100) -> set[str]:
    """The keys of a JSONL file's first ``rows`` objects: enough to name a missing text field
    before any work starts."""
    keys: set[str] = set()
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        for raw in iter(f.readline, b""):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                keys.update(obj)
                rows -= 1
                if not rows:
                    break
    return keys


def count_rows(path: str) -> int:
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        return sum(1 for raw in iter(f.readline, b"") if raw.strip())


def required(spec: Spec) -> list[str]:
    """A row may omit keys: the first file must have the text and language fields only."""
    return [c for c in (spec.text_field, spec.lang_field) if c]


JSONL = TabularFormat(
    "jsonl",
    suffixes=(".jsonl", ".json", ".jsonl.gz", ".jsonl.xz", ".jsonl.bz2", ".jsonl.zst"),
    pieces=pieces,
    rows=lambda path, piece, first, names: read_jsonl(path, names),
    columns=jsonl_columns,
    required=required,
    count_rows=count_rows,
)
