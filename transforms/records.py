"""Record and reject-line shapes shared by every stage (see CONTRACT.md), and stage outputs."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window


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


def record_reject(record: dict, stage: str, reason: str, detail: dict | None = None) -> dict:
    """The reject line of a whole record dropped by a model stage."""
    line = {
        "id": record["id"],
        "lang": record["lang"],
        "stage": stage,
        "reason": reason,
        "text": record["response"],
        "source": record["source"],
    }
    if detail:
        line["detail"] = detail
    return line


class Tallied(beam.DoFn):
    """A DoFn that tallies ((lang, name), n) counts per bundle and emits them once, at the
    bundle's end, on its ``stats`` output and as Beam metrics (``{stage}/{lang}``), so progress
    shows on every runner without an element or a log line per record."""

    stage = ""

    def start_bundle(self):
        self.tally = Counter()

    def finish_bundle(self):
        for (lang, name), n in self.tally.items():
            Metrics.counter(f"{self.stage}/{lang}", name).inc(n)
            yield beam.pvalue.TaggedOutput(
                "stats", window.GlobalWindows.windowed_value_at_end_of_window(((lang, name), n))
            )


class RouteResults(Tallied):
    """(record, reject reason or None[, detail]) -> kept records (main), reject lines
    (``rejects``) and counts ``stages.{stage}.in``, ``.out``, ``.rejected.{reason}``."""

    def __init__(self, stage: str):
        self.stage = stage

    def process(self, result):
        record, reason, *detail = result
        prefix = f"stages.{self.stage}"
        self.tally[record["lang"], f"{prefix}.in"] += 1
        if reason:
            self.tally[record["lang"], f"{prefix}.rejected.{reason}"] += 1
            line = record_reject(record, self.stage, reason, detail[0] if detail else None)
            yield beam.pvalue.TaggedOutput("rejects", line)
        else:
            self.tally[record["lang"], f"{prefix}.out"] += 1
            yield record


def with_provenance(record: dict, stage: str, model: str, prompt: str | None = None) -> dict:
    """``record`` with the model (and prompt) that produced ``stage``'s fields."""
    provenance = record.get("provenance", {})
    out = {**provenance, "models": {**provenance.get("models", {}), stage: model}}
    if prompt:
        out["prompts"] = {**provenance.get("prompts", {}), stage: prompt}
    return {**record, "provenance": out}


def route(results, stage: str) -> StageOutput:
    routed = results | f"Route{stage.title()}" >> beam.ParDo(RouteResults(stage)).with_outputs(
        "rejects", "stats", main="records"
    )
    return StageOutput(routed.records, routed.rejects, routed.stats)
