"""Record and reject-line shapes shared by every stage (see CONTRACT.md), and stage outputs."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import apache_beam as beam


class StageOutput(NamedTuple):
    """What every stage returns: kept records, reject lines, and (stat name, count) pairs."""

    records: beam.PCollection
    rejects: beam.PCollection
    stats: beam.PCollection


def record_id(lang: str, file: str, doc: int, first: int, last: int) -> str:
    """Stable id of a paragraph span: the same on every run, runner and machine."""
    key = f"{lang}\t{file}\t{doc}\t{first}\t{last}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def source(file: str, doc: int, first: int, last: int) -> dict[str, Any]:
    """Where a text comes from: ``paragraphs`` is the inclusive span of paragraph indices."""
    return {"file": file, "doc": doc, "paragraphs": [first, last]}


def reject(
    lang: str,
    stage: str,
    reason: str,
    text: str,
    file: str,
    doc: int,
    first: int,
    last: int,
    detail: dict | None = None,
) -> dict[str, Any]:
    line = {
        "id": record_id(lang, file, doc, first, last),
        "lang": lang,
        "stage": stage,
        "reason": reason,
        "text": text,
        "source": source(file, doc, first, last),
    }
    if detail:
        line["detail"] = detail
    return line
