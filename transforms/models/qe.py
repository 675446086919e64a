"""Reference-free translation quality (COMET-kiwi through ``unbabel-comet``, ``comet.py``). Scores are stored on the record (``scores.qe_response``, ``scores.qe_instruction``);
thresholds apply afterwards, in one place (``below_threshold``), so changing them needs no model.

COMET-kiwi reads at most 512 tokens of a pair, so a long text is scored in pieces: the
translate stage hands on its (source segment, translation) pairs, and the qe stage pairs I_en
and I_x paragraph by paragraph (backtranslation keeps paragraphs; the whole text where the
counts differ). The score is the mean of the pieces' scores weighted by their source length;
the lowest piece's score is kept as ``scores.{name}_min`` and ``provenance.scoring.{name}``
says how the score was made. A score that is not a finite number is a ``score_invalid``
reject, whatever the threshold.

The model and its ModelHandler are in ``comet.py``, imported when the graph is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import apache_beam as beam

from transforms.models.config import QeConfig
from transforms.stages import Call, Stage, fingerprint_of, pass_rate, section_hints

QE_RESPONSE_LOW = "qe_response_low"
QE_INSTRUCTION_LOW = "qe_instruction_low"
SCORE_INVALID = "score_invalid"
AGGREGATION = "length_weighted_mean"

Result = tuple  # (record, reject reason or None[, detail or in-flight info])


def pieces(record: dict, source_field: str, target_field: str, info: dict) -> tuple[str, list[tuple[str, str]]]:
    """(unit, the (source, translation) pairs to score) of a record: the translator's
    segments when it handed them on (``info``), else paragraphs when both sides have as many,
    else the whole text."""
    if info.get("segments"):
        return "segment", [tuple(pair) for pair in info["segments"]]
    source, target = record[source_field], record[target_field]
    src_lines = [line for line in source.split("\n") if line.strip()]
    tgt_lines = [line for line in target.split("\n") if line.strip()]
    if len(src_lines) > 1 and len(src_lines) == len(tgt_lines):
        return "paragraph", list(zip(src_lines, tgt_lines, strict=True))
    return "text", [(source, target)]


def aggregate(pairs: Sequence[tuple[str, str]], scores: Sequence[float]) -> tuple[float, float]:
    """(mean of ``scores`` weighted by their source's length in characters, the minimum); a
    non-finite piece makes both non-finite (never skipped)."""
    weights = [max(1, len(src)) for src, _ in pairs]
    if not all(math.isfinite(s) for s in scores):
        return math.nan, math.nan
    mean = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
    return round(mean, 4), min(scores)


def below_threshold(result: Result, score_name: str, minimum: float | None, reason: str) -> Result:
    """Apply a threshold to a scored record (None: keep every finite score); a score that
    is not a finite number (NaN, inf) is ``score_invalid`` whatever the threshold."""
    record, rejected, *_ = result
    if rejected is not None:
        return result
    score = record["scores"][score_name]
    if not math.isfinite(score):
        return record, SCORE_INVALID, {"score": score_name, "value": str(score)}
    if minimum is not None and score < minimum:
        return record, reason
    return result


class QualityEstimate(beam.PTransform):
    """The qe stage: records -> StageOutput, scoring I_en -> I_x (``scores.qe_instruction``)
    and rejecting pairs under ``min_instruction`` as ``qe_instruction_low``."""

    def __init__(self, cfg: QeConfig, cache_dir: str | None = None):
        super().__init__()
        self.cfg, self.cache_dir = cfg, cache_dir

    def expand(self, records):
        from apache_beam.ml.inference.base import RunInference

        from transforms.models.comet import QeHandler
        from transforms.records.shapes import route

        results = (
            records
            | "Pending" >> beam.Map(lambda r: (r, None))
            | "Score" >> RunInference(QeHandler(self.cfg, "instruction_en", "instruction", "qe_instruction", self.cache_dir))
            | "Threshold" >> beam.Map(below_threshold, "qe_instruction", self.cfg.min_instruction, QE_INSTRUCTION_LOW)
        )
        return route(results, QE.name, scores=("qe_instruction",))


QE = Stage(
    "qe",
    fingerprint=fingerprint_of("qe"),
    report=lambda c: (c.get("qe", {}).get("model", "?"), ""),
    transform=lambda ctx: QualityEstimate(ctx.config.qe, ctx.cache),
    hints=lambda config: section_hints(config.qe),
    pass_rate=lambda cfg: pass_rate(cfg.qe.min_instruction, cfg.cost.qe_instruction_pass_rate),
    calls=lambda p: [Call("comet", p.instr_en + p.instr_x, p.instr_en + p.instr_x)],
    reasons=(QE_INSTRUCTION_LOW, SCORE_INVALID),
)
