"""COMET-kiwi quality estimation through unbabel-comet, on a tiny checkpoint built locally."""

import json

import pytest
import torch

from pipeline.main import main
from tests.pipeline.conftest import read_jsonl
from transforms.models import comet, qe
from transforms.models.config import QeConfig

CFG = QeConfig(model="tiny:comet", batch_size=2, threads=1)


@pytest.fixture(scope="module")
def scorer():
    return comet.CometScorer(CFG)


def test_checkpoint_weights_are_loaded(scorer):
    saved = torch.load(comet.checkpoint_path(CFG.model), weights_only=False)["state_dict"]
    loaded = scorer.model.state_dict()
    assert saved.keys() == loaded.keys()  # comet loads with strict=False: check it all arrived
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_scores_keep_input_order(scorer):
    pairs = [("Hola", "Hello"), ("ప్రతి వ్యక్తికిని హక్కు గలదు.", "Everyone has the right to it."), ("a", "b c d e f")]
    scores = scorer.score(pairs)
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert [scorer.score([p])[0] for p in pairs] == scores


def test_handler_scores_only_records_still_in(scorer):
    handler = comet.QeHandler(CFG, "response", "response_en", "qe_response")
    kept = {"id": "a", "lang": "spa", "response": "Hola", "response_en": "Hello", "scores": {"lid": 0.9}}
    dropped = {"id": "b", "lang": "spa", "response": "x", "response_en": "y"}
    (a, reason_a), (b, reason_b) = handler.run_inference([(kept, None), (dropped, "translation_empty")], scorer)
    assert reason_a is None and set(a["scores"]) == {"lid", "qe_response", "qe_response_min"}
    assert (b, reason_b) == (dropped, "translation_empty")


def test_a_record_is_scored_per_translated_segment(scorer):
    """The translate stage hands on its segments: each pair is scored alone (so none is cut
    at COMET's 512 tokens), the record's score is their length-weighted mean, the lowest is
    kept, and the record says how its score was made."""
    segments = [("Hola.", "Hello."), ("ప్రతి వ్యక్తికిని హక్కు గలదు. " * 8, "Everyone has the right. " * 8), ("a", "b c d")]
    rec = {"id": "a", "lang": "tel", "response": "x", "response_en": "y"}
    handler = comet.QeHandler(CFG, "response", "response_en", "qe_response")
    ((out, reason),) = handler.run_inference([(rec, None, {"segments": segments})], scorer)
    each = scorer.score(segments)
    weights = [len(src) for src, _ in segments]
    assert reason is None and len(set(each)) > 1
    assert out["scores"]["qe_response"] == pytest.approx(sum(w * s for w, s in zip(weights, each)) / sum(weights), abs=1e-4)
    assert out["scores"]["qe_response"] != scorer.score([(rec["response"], rec["response_en"])])[0]
    assert out["scores"]["qe_response_min"] == min(each)
    assert out["provenance"]["scoring"]["qe_response"] == {"aggregation": "length_weighted_mean", "unit": "segment", "pieces": 3}


def test_without_segments_paragraphs_are_paired_else_the_whole_text(scorer):
    handler = comet.QeHandler(CFG, "instruction_en", "instruction", "qe_instruction")
    two = {"id": "a", "lang": "spa", "instruction_en": "First line.\nSecond line.", "instruction": "Primera.\nSegunda."}
    ragged = {"id": "b", "lang": "spa", "instruction_en": "One.\nTwo.", "instruction": "Uno y dos."}
    (a, _), (b, _) = handler.run_inference([(two, None), (ragged, None)], scorer)
    assert a["provenance"]["scoring"]["qe_instruction"]["unit"] == "paragraph"
    lines = [("First line.", "Primera."), ("Second line.", "Segunda.")]
    assert a["scores"]["qe_instruction_min"] == min(scorer.score(lines))
    assert b["provenance"]["scoring"]["qe_instruction"] == {"aggregation": "length_weighted_mean", "unit": "text", "pieces": 1}
    assert b["scores"]["qe_instruction"] == scorer.score([("One.\nTwo.", "Uno y dos.")])[0]


def poisoned_comet(directory):
    """A copy of the tiny COMET checkpoint whose estimator outputs NaN (a real model, broken
    the way a bad checkpoint or an fp16 overflow breaks one)."""
    import shutil
    from pathlib import Path

    source = Path(comet.checkpoint_path(CFG.model)).parent.parent
    shutil.copytree(source, directory)
    ckpt = directory / "checkpoints" / "model.ckpt"
    state = torch.load(ckpt, weights_only=False)
    (name,) = [k for k in state["state_dict"] if k.startswith("estimator") and k.endswith("bias")][-1:]
    state["state_dict"][name].fill_(float("nan"))
    torch.save(state, ckpt)
    return directory


def test_a_score_that_is_not_a_number_is_a_reject_whatever_the_threshold(tmp_path):
    poisoned = comet.CometScorer(QeConfig(model=str(poisoned_comet(tmp_path / "nan")), batch_size=2, threads=1))
    handler = comet.QeHandler(CFG, "response", "response_en", "qe_response")
    rec = {"id": "a", "lang": "spa", "response": "Hola", "response_en": "Hello"}
    ((scored, reason),) = handler.run_inference([(rec, None)], poisoned)
    assert reason is None and scored["scores"]["qe_response"] != scored["scores"]["qe_response"]  # NaN
    for minimum in (0.7, None):  # nan < 0.7 is False: without the check it would pass
        assert qe.below_threshold((scored, None), "qe_response", minimum, qe.QE_RESPONSE_LOW) == (
            scored, qe.SCORE_INVALID, {"score": "qe_response", "value": "nan"})
    inf = {"scores": {"qe_response": float("inf")}}
    assert qe.below_threshold((inf, None), "qe_response", None, qe.QE_RESPONSE_LOW)[1] == qe.SCORE_INVALID


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


@pytest.mark.slow
def test_a_model_that_scores_nan_rejects_every_record_as_score_invalid(tmp_path):
    config = tmp_path / "nan.yaml"
    config.write_text(f"qe: {{model: {poisoned_comet(tmp_path / 'nan')}}}\nselect: {{read: {{max_documents: 30}}}}\n")
    out = tmp_path / "out"
    assert main(["--langs", "spa", "--output", str(out), "--until", "translate", "--config", str(config)]) == 0
    stats = json.loads((out / "stats" / "spa.json").read_text())
    stage = stats["stages"]["translate"]
    assert stage["in"] > 0 and stage["rejected"] == {"score_invalid": stage["in"]}
    assert stats["scores"]["qe_response"]["invalid"] == stage["in"]
    assert not read_jsonl(out / "data" / "spa")
