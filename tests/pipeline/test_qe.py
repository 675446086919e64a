"""COMET-kiwi quality estimation through unbabel-comet, on a tiny checkpoint built locally."""

import json

import pytest
import torch

from pipeline.config import QeConfig
from pipeline.main import main
from tests.pipeline.conftest import read_jsonl
from transforms import qe

CFG = QeConfig(model="tiny:comet", batch_size=2, threads=1)


@pytest.fixture(scope="module")
def scorer():
    return qe.CometScorer(CFG)


def test_checkpoint_weights_are_loaded(scorer):
    saved = torch.load(qe.checkpoint_path(CFG.model), weights_only=False)["state_dict"]
    loaded = scorer.model.state_dict()
    assert saved.keys() == loaded.keys()  # comet loads with strict=False: check it all arrived
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_scores_keep_input_order(scorer):
    pairs = [("Hola", "Hello"), ("ప్రతి వ్యక్తికిని హక్కు గలదు.", "Everyone has the right to it."), ("a", "b c d e f")]
    scores = scorer.score(pairs)
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert [scorer.score([p])[0] for p in pairs] == scores


def test_handler_scores_only_records_still_in(scorer):
    handler = qe.QeHandler(CFG, "response", "response_en", "qe_response")
    kept = {"id": "a", "lang": "spa", "response": "Hola", "response_en": "Hello", "scores": {"lid": 0.9}}
    dropped = {"id": "b", "lang": "spa", "response": "x", "response_en": "y"}
    (a, reason_a), (b, reason_b) = handler.run_inference([(kept, None), (dropped, "translation_empty")], scorer)
    assert reason_a is None and set(a["scores"]) == {"lid", "qe_response"}
    assert (b, reason_b) == (dropped, "translation_empty")


def test_threshold_is_applied_to_stored_scores():
    record = {"scores": {"qe_response": 0.5}}
    assert qe.below_threshold((record, None), "qe_response", 0.7, qe.QE_RESPONSE_LOW) == (record, qe.QE_RESPONSE_LOW)
    assert qe.below_threshold((record, None), "qe_response", 0.4, qe.QE_RESPONSE_LOW) == (record, None)
    assert qe.below_threshold((record, None), "qe_response", None, qe.QE_RESPONSE_LOW) == (record, None)


@pytest.mark.slow
def test_low_quality_translations_never_reach_later_stages(tmp_path):
    config = tmp_path / "strict.yaml"
    config.write_text("qe: {min_response: 0.99}\n")  # a random model scores far below
    out = tmp_path / "out"
    assert main(["--langs", "spa", "--output", str(out), "--until", "translate", "--config", str(config)]) == 0
    stage = json.loads((out / "stats" / "spa.json").read_text())["stages"]["translate"]
    assert stage["out"] == 0 and stage["rejected"] == {"qe_response_low": stage["in"]} and stage["in"] > 0
    rejects = [r for r in read_jsonl(out / "rejects" / "spa") if r["stage"] == "translate"]
    assert len(rejects) == stage["in"] and {r["reason"] for r in rejects} == {"qe_response_low"}
