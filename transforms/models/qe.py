"""Reference-free translation quality (COMET-kiwi through ``unbabel-comet``) behind a Beam
ModelHandler. Scores are stored on the record (``scores.qe_response``, ``scores.qe_instruction``);
thresholds apply afterwards, in one place (``below_threshold``), so changing them needs no model.

COMET-kiwi reads at most 512 tokens of a pair, so a long text is scored in pieces: the
translate stage hands on its (source segment, translation) pairs, and the qe stage pairs I_en
and I_x paragraph by paragraph (backtranslation keeps paragraphs; the whole text where the
counts differ). The score is the mean of the pieces' scores weighted by their source length;
the lowest piece's score is kept as ``scores.{name}_min`` and ``provenance.scoring.{name}``
says how the score was made. A score that is not a finite number is a ``score_invalid``
reject, whatever the threshold.

The model runs through COMET's own ``prepare_for_inference`` and ``predict_step`` under
``torch.inference_mode`` (no Lightning trainer, no forked DataLoader workers), in batches sorted
by length, half precision on GPU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from pipeline.config import QeConfig
from transforms.records.cache import CallCache

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


def checkpoint_path(name: str) -> str:
    """``tiny:comet``, a local model directory or checkpoint, or a hub id (downloaded)."""
    from transforms.models import model_store

    path = Path(model_store.resolve(name))
    if path.is_file():
        return str(path)
    if (path / "checkpoints" / "model.ckpt").is_file():
        return str(path / "checkpoints" / "model.ckpt")
    from comet import download_model

    return download_model(str(path))


class CometScorer:
    """A COMET-kiwi model; its weights load on the first pairs to score (a resumed run whose
    every pair is in the cache loads none)."""

    def __init__(self, cfg: QeConfig):
        import torch

        self.cfg, self.torch = cfg, torch
        self.device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if cfg.threads and not self.device.startswith("cuda"):
            torch.set_num_threads(cfg.threads)

    @functools.cached_property
    def model(self):
        from comet import load_from_checkpoint

        # hparams.yaml, not the checkpoint's copy of it: a staged model names its encoder there
        model = load_from_checkpoint(checkpoint_path(self.cfg.model), reload_hparams=True)
        model.eval().to(self.device)
        if self.device.startswith("cuda"):
            model.half()
        return model

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """COMET-kiwi scores of (source, translation) pairs, in input order."""
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        scores: list[float | None] = [None] * len(pairs)
        for start in range(0, len(order), self.cfg.batch_size):
            chunk = order[start:start + self.cfg.batch_size]
            inputs = self.model.prepare_for_inference([{"src": pairs[i][0], "mt": pairs[i][1]} for i in chunk])
            inputs = [{k: v.to(self.device) for k, v in part.items()} for part in inputs]
            with self.torch.inference_mode():
                predicted = self.model.predict_step(inputs).scores.float().cpu().tolist()
            for i, value in zip(chunk, predicted, strict=True):
                scores[i] = round(float(value), 4)
        return scores


class QeHandler(ModelHandler[Result, Result, CometScorer]):
    """(record, reason[, info]) -> (record, reason), with ``scores[score_name]`` (and
    ``_min``) set on records not already rejected: the COMET score of (``source_field`` ->
    ``target_field``), aggregated over its pieces (``pieces``). A reject passes unchanged."""

    def __init__(self, cfg: QeConfig, source_field: str, target_field: str, score_name: str,
                 cache_dir: str | None = None):
        super().__init__(min_batch_size=1, max_batch_size=cfg.records_per_batch)
        self.cfg = cfg
        self.source_field, self.target_field, self.score_name = source_field, target_field, score_name
        self.cache = CallCache(cache_dir, score_name, {"model": cfg.model})

    def load_model(self) -> CometScorer:
        return CometScorer(self.cfg)

    def share_model_across_processes(self) -> bool:
        return self.cfg.share_model

    def run_inference(self, batch: Sequence[Result], model: CometScorer, inference_args=None) -> Iterable[Result]:
        results = list(batch)
        todo = {}  # record index -> (unit, pairs)
        for k, (record, reason, *info) in enumerate(batch):
            if reason is None:
                todo[k] = pieces(record, self.source_field, self.target_field, info[0] if info else {})
        flat = [pair for _, pairs in todo.values() for pair in pairs]
        scores = iter(self.cache.run(flat, model.score))
        for k, (unit, pairs) in todo.items():
            score, lowest = aggregate(pairs, [next(scores) for _ in pairs])
            record = batch[k][0]
            name = self.score_name
            provenance = record.get("provenance", {})
            how = {"aggregation": AGGREGATION, "unit": unit, "pieces": len(pairs)}
            results[k] = ({
                **record,
                "scores": {**record.get("scores", {}), name: score, f"{name}_min": lowest},
                "provenance": {**provenance, "scoring": {**provenance.get("scoring", {}), name: how}},
            }, None)
        if next(scores, None) is not None:
            raise RuntimeError("more QE scores than pairs")
        return results

    def get_metrics_namespace(self) -> str:
        return f"qe/{self.score_name}"


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
        from transforms.records.shapes import route

        results = (
            records
            | "Pending" >> beam.Map(lambda r: (r, None))
            | "Score" >> RunInference(QeHandler(self.cfg, "instruction_en", "instruction", "qe_instruction", self.cache_dir))
            | "Threshold" >> beam.Map(below_threshold, "qe_instruction", self.cfg.min_instruction, QE_INSTRUCTION_LOW)
        )
        return route(results, "qe")
