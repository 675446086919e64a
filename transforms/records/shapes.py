"""Record and reject-line shapes shared by every stage (see CONTRACT.md), and stage outputs."""

from __future__ import annotations

import hashlib
import math
import pickle
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window

from transforms.records import counts
from transforms.records.progress import FEED_EVERY_S, PROGRESS


def pickled(value) -> bytes:
    """``value`` pickled, as the one bytes value it crosses a shuffle as: a runner that decodes
    and re-encodes what it groups (the local FnApiRunner does, at the worker and again at the
    runner) then copies bytes instead of rebuilding every tuple. Measured on the select
    benchmark's kept paragraphs (50,000 documents): Beam's coder takes 0.14 s to encode and
    0.84 s to decode them, once each way; pickle 0.10 s and 0.33 s, once."""
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def unpickled(values: Iterable[bytes]) -> Iterator:
    """The items of a group's ``pickled`` lists, in one stream."""
    return chain.from_iterable(map(pickle.loads, values))


class StageOutput(NamedTuple):
    """What every stage returns: kept records, reject lines, and (stat name, count) pairs.
    A stage whose rejects come from several steps may give them as a tuple of PCollections
    (``parts``): the local runner (FnApiRunner) materialises every Flatten of several inputs,
    encoding and decoding each reject once more (1.4 s of the benchmark's heavy corpus)."""

    records: beam.PCollection
    rejects: beam.PCollection | tuple[beam.PCollection, ...]
    stats: beam.PCollection


def parts(pcolls) -> tuple:
    """A PCollection, or a tuple of them (Beam applies a transform to a tuple's PCollections;
    a list it would take for data), as a tuple."""
    return pcolls if isinstance(pcolls, tuple) else (pcolls,)


DEFAULT_SOURCE = "cc100"  # the source --input sets: its ids are those of runs before sources


def record_id(lang: str, file: str, doc: int, first: int, last: int, source_name: str = DEFAULT_SOURCE) -> str:
    """Stable id of a paragraph span (of a tabular row: ``doc`` is the row, the span 0-0): the
    same on every run, runner and machine, and distinct across sources."""
    key = f"{lang}\t{file}\t{doc}\t{first}\t{last}"
    if source_name != DEFAULT_SOURCE:
        key += f"\t{source_name}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]


def origin(name: str, kind: str, file: str, unit: int, row_id: Any = None) -> dict[str, Any]:
    """Where a unit of input comes from, as a record's ``source`` says it: a CC-100 document
    (``doc``; its records add their ``paragraphs``), or a tabular row (``row``, and ``id``
    where the source has an id field)."""
    if kind == "cc100":
        return {"name": name, "kind": kind, "file": file, "doc": unit}
    out = {"name": name, "kind": kind, "file": file, "row": unit}
    if row_id is not None:
        out["id"] = row_id
    return out


def span_source(where: dict[str, Any], first: int, last: int) -> dict[str, Any]:
    """The ``source`` of paragraphs ``first``..``last`` (inclusive) of the unit ``where``; a
    tabular row is one paragraph, and says so by its row alone."""
    return dict(where) if "row" in where else {**where, "paragraphs": [first, last]}


def span_id(lang: str, where: dict[str, Any], first: int, last: int) -> str:
    unit = where["row"] if "row" in where else where["doc"]
    return record_id(lang, where["file"], unit, first, last, where["name"])


def paragraphs_of(src: dict[str, Any]) -> int:
    """How many paragraphs (rows) a ``source`` spans."""
    if "paragraphs" not in src:
        return 1
    first, last = src["paragraphs"]
    return last - first + 1


def source(file: str, doc: int, first: int, last: int) -> dict[str, Any]:
    """Where a text of the CC-100 source ``cc100`` comes from: ``paragraphs`` is the inclusive
    span of paragraph indices."""
    return span_source(origin(DEFAULT_SOURCE, "cc100", file, doc), first, last)


def span_reject(
    lang: str, stage: str, reason: str, text: str, where: dict, first: int, last: int,
    detail: dict | None = None,
) -> dict[str, Any]:
    """The reject line of paragraphs ``first``..``last`` of the unit ``where`` (``origin``)."""
    line = {
        "id": span_id(lang, where, first, last),
        "lang": lang,
        "stage": stage,
        "reason": reason,
        "text": text,
        "source": span_source(where, first, last),
    }
    if detail:
        line["detail"] = detail
    return line


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
    """``span_reject`` of a document of the CC-100 source ``cc100``."""
    return span_reject(lang, stage, reason, text, origin(DEFAULT_SOURCE, "cc100", file, doc), first, last, detail)


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
    shows on every runner without an element or a log line per record. It also feeds
    ``PROGRESS`` (a line per stage now and then, for people at a terminal): at the bundle's
    end and, through ``feed_progress`` at the end of ``process``, every ``FEED_EVERY_S`` within
    it, since a local runner (FnApiRunner) may run a whole stage as one bundle."""

    stage = ""

    def start_bundle(self):
        self.tally = Counter()
        self.fed = Counter()  # the part of ``tally`` PROGRESS has
        self.next_feed = time.monotonic() + FEED_EVERY_S
        PROGRESS.start(self.stage)

    def feed_progress(self):
        """Hand PROGRESS what this bundle counted since the last time, if that was a while ago."""
        if time.monotonic() >= self.next_feed:
            self._feed()

    def _feed(self):
        PROGRESS.add(self.stage, self.tally - self.fed)
        self.fed = self.tally.copy()
        self.next_feed = time.monotonic() + FEED_EVERY_S

    def finish_bundle(self):
        self._feed()
        for (lang, name), n in self.tally.items():
            Metrics.counter(f"{self.stage}/{lang}", name).inc(n)
            yield beam.pvalue.TaggedOutput(
                "stats", window.GlobalWindows.windowed_value_at_end_of_window(((lang, name), n))
            )


@dataclass(frozen=True)
class ScoreScale:
    """How a score is binned for its histogram: bin ``floor(score * per_unit)``, clamped to
    ``0..top`` (a random test model may score anything), labelled by the bin's lower edge."""

    per_unit: int
    top: int
    decimals: int
    threshold: tuple[str, str]  # (config section, key) of the minimum that applies to it

    def bin(self, score: float) -> int:
        return min(self.top, max(0, math.floor(score * self.per_unit)))

    def label(self, index: int) -> str:
        return f"{index / self.per_unit:.{self.decimals}f}"


# Every stored model score, in the order stages produce them: judge 0-5; COMET-kiwi in bins of
# 0.05 over [0, 1] (scores of 1 and above in the top bin).
SCORES = {
    "qe_response": ScoreScale(20, 20, 2, ("qe", "min_response")),
    "judge": ScoreScale(1, 5, 0, ("judge", "min_score")),
    "qe_instruction": ScoreScale(20, 20, 2, ("qe", "min_instruction")),
}
SCORE_SUM_SCALE = 10_000  # score sums travel as integers, in units of 1e-4 (COMET's rounding)


def score_stats(scores: dict[str, float], names: tuple[str, ...]) -> list[tuple[str, int]]:
    """(stat name, count) pairs of the named scores present in ``scores``: the histogram bin
    and the sum (for the mean); a non-finite score is only counted as ``invalid``."""
    pairs = []
    for name in names:
        if name not in scores:
            continue
        score = scores[name]
        if not math.isfinite(score):
            pairs.append((counts.score(name, "invalid"), 1))
            continue
        pairs.append((counts.score(name, f"hist.{SCORES[name].bin(score)}"), 1))
        pairs.append((counts.score(name, f"sum_x{SCORE_SUM_SCALE}"), round(score * SCORE_SUM_SCALE)))
    return pairs


class RouteResults(Tallied):
    """(record, reject reason or None[, detail]) -> kept records (main), reject lines
    (``rejects``) and counts ``stages.{stage}.in``, ``.out``, ``.rejected.{reason}``, and the
    histograms of the scores this stage produced (``scores``: names in ``SCORES``), taken before
    its threshold, so they show where the threshold cuts."""

    def __init__(self, stage: str, make_reject=record_reject, scores: tuple[str, ...] = ()):
        self.stage, self.make_reject = stage, make_reject  # (record, stage, reason, detail) -> line
        self.scores = scores

    def process(self, result):
        record, reason, *detail = result
        self.tally[record["lang"], counts.stage(self.stage, "in")] += 1
        for name, n in score_stats(record.get("scores", {}), self.scores):
            self.tally[record["lang"], name] += n
        if reason:
            self.tally[record["lang"], counts.stage_rejected(self.stage, reason)] += 1
            line = self.make_reject(record, self.stage, reason, detail[0] if detail else None)
            yield beam.pvalue.TaggedOutput("rejects", line)
        else:
            self.tally[record["lang"], counts.stage(self.stage, "out")] += 1
            yield record
        self.feed_progress()


def with_provenance(record: dict, stage: str, model: str, prompt: str | None = None) -> dict:
    """``record`` with the model (and prompt) that produced ``stage``'s fields."""
    provenance = record.get("provenance", {})
    out = {**provenance, "models": {**provenance.get("models", {}), stage: model}}
    if prompt:
        out["prompts"] = {**provenance.get("prompts", {}), stage: prompt}
    return {**record, "provenance": out}


def route(results, stage: str, make_reject=record_reject, scores: tuple[str, ...] = ()) -> StageOutput:
    """(record, reason or None[, detail]) -> StageOutput; ``make_reject`` gives a rejected
    record's line (a method whose records have another shape brings its own); ``scores``: the
    scores the stage produced, whose histograms the stats keep."""
    routed = results | f"Route{stage.title()}" >> beam.ParDo(RouteResults(stage, make_reject, scores)).with_outputs(
        "rejects", "stats", main="records"
    )
    return StageOutput(routed.records, routed.rejects, routed.stats)


def with_messages(record: dict) -> dict:
    """A natural-method record with ``messages`` (user: instruction, assistant: response),
    once it has its instruction; unchanged before."""
    if not record.get("instruction"):
        return record
    return {**record, "messages": [{"role": "user", "content": record["instruction"]},
                                   {"role": "assistant", "content": record["response"]}]}
