"""The tabular source kinds, by the name a source's ``kind`` gives (``tabular.TabularFormat``):
a new file format is a module like ``jsonl.py`` and one entry here."""

from __future__ import annotations

from transforms.sources.jsonl import JSONL
from transforms.sources.parquet import PARQUET

FORMATS = {fmt.kind: fmt for fmt in (JSONL, PARQUET)}


def kind_of(path: str) -> str:
    """A seed file's format by its name's suffix; JSONL where none says."""
    return next((kind for kind, fmt in FORMATS.items() if path.endswith(fmt.suffixes)), JSONL.kind)
