"""COMET-kiwi (``unbabel-comet``) behind a Beam ModelHandler: the qe stages' engine (``qe.py``).

The model runs through COMET's own ``prepare_for_inference`` and ``predict_step`` under
``torch.inference_mode`` (no Lightning trainer, no forked DataLoader workers), in batches sorted
by length, half precision on GPU. Importing this module imports Beam's RunInference and torch:
the stage modules import it only when they build their graph.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

from apache_beam.ml.inference.base import ModelHandler

from transforms.models.config import QeConfig
from transforms.models.qe import AGGREGATION, Result, aggregate, pieces
from transforms.records.cache import CallCache


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
