"""Translation through the real transformers code path, on a tiny NLLB built locally."""

import json

import pytest

from pipeline.main import main
from tests.pipeline.conftest import read_jsonl
from transforms.models import nllb, segment, translate
from transforms.models.config import TranslateConfig

CFG = TranslateConfig(model="tiny:nllb", batch_tokens=64, records_per_batch=8)
# the random tiny NLLB loops until its limit on every segment (see the truncation tests):
# tests of the other behaviour keep its output
KEEP = TranslateConfig(model="tiny:nllb", batch_tokens=64, records_per_batch=8,
                       reject_truncated=False, reject_degenerate=False)


@pytest.fixture(scope="module")
def translator():
    return nllb.NllbTranslator(CFG)


def record(lang: str, text: str, i: int = 0) -> dict:
    return {"id": f"r{i}", "lang": lang, "response": text, "source": {"file": "f", "doc": i, "paragraphs": [0, 0]}}


def test_batches_are_longest_first_and_within_budget(translator):
    lengths = [5, 30, 12, 12, 3, 40, 7]
    groups = translator.batches(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    flat = [lengths[i] for g in groups for i in g]
    assert flat == sorted(lengths, reverse=True)
    for g in groups:
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) <= CFG.batch_tokens


def test_translate_keeps_order_and_is_deterministic(translator):
    texts = ["ప్రతి వ్యక్తికిని హక్కు గలదు.", "Hola.", "すべて人は、国籍をもつ権利を有する。" * 3]
    first = translator.translate(texts, "tel_Telu", "eng_Latn")
    assert len(first) == 3 and all(o["text"] for o in first)
    assert translator.translate(texts, "tel_Telu", "eng_Latn") == first
    assert translator.translate(texts[1:2], "tel_Telu", "eng_Latn") == first[1:2]


def test_handler_translates_and_rejects_with_reasons(translator):
    handler = nllb.NllbHandler(KEEP, "response", "response_en", to_english=True)
    batch = [
        record("tel", "ప్రతి వ్యక్తికిని హక్కు గలదు.\nవిధి విరుద్ధముగా ఏ వ్యక్తిని గాని చేయరాదు.", 0),
        record("bre", "Ganet eo an holl dud libr ha par o dellezegezh.", 1),  # NLLB has no Breton
        record("spa", "a" * 3000, 2),  # one 'word' longer than the segment limit
        record("jpn", "すべて人は、国籍をもつ権利を有する。", 3),
    ]
    results = list(handler.run_inference(batch, translator))
    assert [r[0]["id"] for r in results] == ["r0", "r1", "r2", "r3"]
    assert [r[1] for r in results] == [
        None, translate.NO_TRANSLATION_MODEL, segment.SEGMENT_TOO_LONG, None
    ]
    assert len(results[0][0]["response_en"].split("\n")) == 2  # paragraphs kept
    assert results[3][0]["response_en"]
    back = nllb.NllbHandler(KEEP, "response_en", "instruction", to_english=False)
    (out, reason, _), = back.run_inference([results[3][0]], translator)
    assert reason is None and out["instruction"]


@pytest.mark.slow
def test_translate_stage_end_to_end(tmp_path):
    assert main(["--langs", "tel,jpn", "--output", str(tmp_path / "t"), "--until", "translate"]) == 0
    for lang in ("tel", "jpn"):
        stats = json.loads((tmp_path / "t" / "stats" / f"{lang}.json").read_text())
        stage = stats["stages"]["translate"]
        assert stage["in"] == stats["selected_records"] > 0
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values())
        records = read_jsonl(tmp_path / "t" / "data" / lang)
        assert len(records) == stage["out"]
        for r in records:
            assert r["response_en"] and r["provenance"]["models"]["translate"] == "tiny:nllb"
            assert len(r["response_en"].split("\n")) == len(r["response"].split("\n"))
        rejected = [r for r in read_jsonl(tmp_path / "t" / "rejects" / lang) if r["stage"] == "translate"]
        ids = [r["id"] for r in records] + [r["id"] for r in rejected]
        assert len(ids) == len(set(ids)) == stats["selected_records"]  # each record once


def test_nothing_to_translate_is_a_counted_reject(translator):
    handler = nllb.NllbHandler(CFG, "response", "response_en", to_english=True)
    ((_, reason),) = handler.run_inference([record("spa", "   ")], translator)
    assert reason == translate.TRANSLATION_EMPTY


def test_a_rerun_answered_by_the_cache_loads_no_weights(tmp_path):
    batch = [record("tel", "ప్రతి వ్యక్తికిని హక్కు గలదు.", 0), record("hin", "हर व्यक्ति को अधिकार है।", 1)]
    first_model = nllb.NllbTranslator(CFG)
    handler = nllb.NllbHandler(KEEP, "response", "response_en", True, cache_dir=str(tmp_path))
    first = list(handler.run_inference(batch, first_model))
    assert "model" in vars(first_model)  # the weights were needed
    again_model = nllb.NllbTranslator(CFG)  # a new process, resuming
    again = nllb.NllbHandler(KEEP, "response", "response_en", True, cache_dir=str(tmp_path))
    assert list(again.run_inference(batch, again_model)) == first
    assert "model" not in vars(again_model)


TEL = "ప్రతి వ్యక్తికిని హక్కు గలదు.\nవిధి విరుద్ధముగా ఏ వ్యక్తిని గాని చేయరాదు."


def test_an_output_that_hit_its_limit_without_eos_is_truncated(translator):
    """The random tiny NLLB never emits its end-of-sequence token: every output runs to its
    per-text limit. Given room (a large ratio) it still does not end: truncated either way,
    and the flag does not depend on the batch."""
    texts = ["ప్రతి వ్యక్తికిని హక్కు గలదు.", "Hola."]
    outputs = translator.translate(texts, "tel_Telu", "eng_Latn")
    assert [o["truncated"] for o in outputs] == [True, True]
    assert translator.translate(texts[1:], "tel_Telu", "eng_Latn") == outputs[1:]


def test_an_output_that_ends_is_not_truncated():
    """Make the tiny model's end-of-sequence token win every step (its decoder's last layer
    norm outputs a constant that only the EOS row of the output layer matches), through the
    real generate loop: the translation ends at once and is not truncated."""
    import torch

    translator = nllb.NllbTranslator(CFG)
    model = translator.model
    with torch.no_grad():
        model.model.decoder.layer_norm.weight.zero_()
        model.model.decoder.layer_norm.bias.fill_(1.0)
        model.lm_head.weight[translator.tokenizer.eos_token_id] = 100.0
    (output,) = translator.translate(["Hola."], "spa_Latn", "eng_Latn")
    assert output == {"text": "", "truncated": False}


@pytest.mark.parametrize("units, share", [
    ("the cat sat on the mat and looked at the dog".split(), 0.0),
    ("the the the the the the the the".split(), 1.0),
    ("we are we are we are we are here now".split(), 0.8),
    ("a b c a b c a b c d e f g h i j k l m n".split(), 9 / 20),
    ("one two one two".split(), 0.0),  # two occurrences are not a loop
])
def test_repeat_share(units, share):
    assert translate.repeat_share(units, 4) == pytest.approx(share)


def test_degenerate_and_truncated_segments_reject_their_record_or_are_flagged():
    loop, text = list(range(3)) * 6, list(range(20))  # token ids
    ended, cut = {"text": "x", "truncated": False}, {"text": "x", "truncated": True}
    cfg = TranslateConfig()
    assert translate.check_segments([ended, ended], [text, text], cfg) == (None, {}, [])
    assert translate.check_segments([ended, cut], [text, text], cfg) == (
        translate.TRANSLATION_TRUNCATED, {"truncated_segments": 1, "segments": 2}, [])
    # a loop is the diagnosis of a segment that ran to its limit
    assert translate.check_segments([ended, cut], [text, loop], cfg) == (
        translate.TRANSLATION_DEGENERATE, {"repeat_share": 1.0, "segments": 2}, [])
    assert translate.check_segments([ended], [[1, 1, 1, 1, 1]], cfg)[0] is None  # too short to judge
    off = TranslateConfig(reject_truncated=False, reject_degenerate=False)
    assert translate.check_segments([ended, cut], [text, loop], off) == (
        None, {}, [translate.TRANSLATION_DEGENERATE, translate.TRANSLATION_TRUNCATED])
    only_loops = TranslateConfig(reject_degenerate=False)
    assert translate.check_segments([cut], [loop], only_loops)[0] == translate.TRANSLATION_TRUNCATED


def test_the_handler_rejects_the_random_models_loops_and_hands_on_segments(translator):
    rec = record("tel", TEL)
    ((_, reason, detail),) = nllb.NllbHandler(CFG, "response", "response_en", True).run_inference([rec], translator)
    assert reason == translate.TRANSLATION_DEGENERATE and detail["repeat_share"] > 0.5
    no_loops = TranslateConfig(model="tiny:nllb", reject_degenerate=False)
    ((_, reason, detail),) = nllb.NllbHandler(no_loops, "response", "response_en", True).run_inference([rec], translator)
    assert reason == translate.TRANSLATION_TRUNCATED and detail == {"truncated_segments": 2, "segments": 2}
    ((out, reason, info),) = nllb.NllbHandler(KEEP, "response", "response_en", True).run_inference([rec], translator)
    assert reason is None and info["flagged"] == [translate.TRANSLATION_DEGENERATE, translate.TRANSLATION_TRUNCATED]
    assert [s for s, _ in info["segments"]] == TEL.split("\n")
    assert out["response_en"].split("\n") == [t for _, t in info["segments"]]


@pytest.mark.slow
def test_the_checks_reject_in_the_stage_and_count_as_flagged_when_off(tmp_path):
    strict = tmp_path / "strict.yaml"
    few = "select: {read: {max_documents: 30}}\n"  # a few records: the random model is slow to loop
    strict.write_text(few + "translate: {reject_truncated: true, reject_degenerate: true}\n")
    out = tmp_path / "strict"
    assert main(["--langs", "tel", "--output", str(out), "--until", "translate", "--config", str(strict)]) == 0
    stage = json.loads((out / "stats" / "tel.json").read_text())["stages"]["translate"]
    assert stage["in"] > 0 and stage["out"] == 0 and "flagged" not in stage
    assert stage["rejected"] == {"translation_degenerate": stage["in"]}  # every output of the random model loops
    lines = [r for r in read_jsonl(out / "rejects" / "tel") if r["stage"] == "translate"]
    assert {r["reason"] for r in lines} == {"translation_degenerate"} and all(r["detail"]["repeat_share"] > 0.5 for r in lines)
    demo = tmp_path / "demo"  # the demo preset keeps them, and says how many it kept
    (tmp_path / "few.yaml").write_text(few)
    assert main(["--langs", "tel", "--output", str(demo), "--until", "translate", "--config", str(tmp_path / "few.yaml")]) == 0
    stage = json.loads((demo / "stats" / "tel.json").read_text())["stages"]["translate"]
    assert stage["out"] == stage["in"] > 0 and stage["rejected"] == {}
    assert stage["flagged"] == {"translation_degenerate": stage["in"], "translation_truncated": stage["in"]}
