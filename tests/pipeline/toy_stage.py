"""A toy model stage, written as a newcomer adds one: this module and one line in a method
(docs/architecture.md). Its "model", behind a real Beam ModelHandler, scores each response by
its share of letters (``scores.toy``); a record under ``MIN_SHARE`` is rejected as ``toy_low``."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from transforms.records.shapes import route, with_provenance
from transforms.stages import Call, Stage, pass_rate

TOY_LOW = "toy_low"
MIN_SHARE = 0.5


class LetterModel:
    def share(self, text: str) -> float:
        return round(sum(map(str.isalpha, text)) / max(len(text), 1), 4)


class LetterShare(ModelHandler):
    """Records -> (record with ``scores.toy``, None) or (record, ``toy_low``)."""

    def load_model(self) -> LetterModel:
        return LetterModel()

    def run_inference(self, batch, model: LetterModel, inference_args=None):
        results = []
        for record in batch:
            share = model.share(record["response"])
            scored = with_provenance({**record, "scores": {**record.get("scores", {}), "toy": share}}, TOY.name,
                                     "letter-share")
            results.append((scored, None) if share >= MIN_SHARE else (scored, TOY_LOW))
        return results


class Toy(beam.PTransform):
    def expand(self, records):
        return route(records | "Score" >> RunInference(LetterShare()), TOY.name)


TOY = Stage(
    "toy",
    fingerprint=lambda cfg: {"min_share": MIN_SHARE},
    report=lambda config: ("letter share", ""),
    transform=lambda context: Toy(),
    pass_rate=lambda cfg: pass_rate(MIN_SHARE, 0.9),
    calls=lambda pricing: [Call("comet", pricing.src, pricing.src)],
    reasons=(TOY_LOW,),
)
