"""Translation through the real transformers code path, on a tiny NLLB built locally."""

import json

import pytest

from pipeline.config import TranslateConfig
from pipeline.main import main
from tests.pipeline.conftest import read_jsonl
from transforms import segment, translate

CFG = TranslateConfig(model="tiny:nllb", batch_tokens=64, records_per_batch=8)


@pytest.fixture(scope="module")
def translator():
    return translate.NllbTranslator(CFG)


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
    assert len(first) == 3 and all(first)
    assert translator.translate(texts, "tel_Telu", "eng_Latn") == first
    assert translator.translate(texts[1:2], "tel_Telu", "eng_Latn") == first[1:2]


def test_handler_translates_and_rejects_with_reasons(translator):
    handler = translate.NllbHandler(CFG, "response", "response_en", to_english=True)
    batch = [
        record("tel", "ప్రతి వ్యక్తికిని హక్కు గలదు.\nవిధి విరుద్ధముగా ఏ వ్యక్తిని గాని చేయరాదు.", 0),
        record("bre", "Ganet eo an holl dud libr ha par o dellezegezh.", 1),  # NLLB has no Breton
        record("spa", "a" * 3000, 2),  # one 'word' longer than the segment limit
        record("jpn", "すべて人は、国籍をもつ権利を有する。", 3),
    ]
    results = list(handler.run_inference(batch, translator))
    assert [r["id"] for r, _ in results] == ["r0", "r1", "r2", "r3"]
    assert [reason for _, reason in results] == [
        None, translate.NO_TRANSLATION_MODEL, segment.SEGMENT_TOO_LONG, None
    ]
    assert len(results[0][0]["response_en"].split("\n")) == 2  # paragraphs kept
    assert results[3][0]["response_en"]
    back = translate.NllbHandler(CFG, "response_en", "instruction", to_english=False)
    (out, reason), = back.run_inference([results[3][0]], translator)
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
    handler = translate.NllbHandler(CFG, "response", "response_en", to_english=True)
    ((_, reason),) = handler.run_inference([record("spa", "   ")], translator)
    assert reason == translate.TRANSLATION_EMPTY


def test_a_rerun_answered_by_the_cache_loads_no_weights(tmp_path):
    batch = [record("tel", "ప్రతి వ్యక్తికిని హక్కు గలదు.", 0), record("hin", "हर व्यक्ति को अधिकार है।", 1)]
    first_model = translate.NllbTranslator(CFG)
    handler = translate.NllbHandler(CFG, "response", "response_en", True, cache_dir=str(tmp_path))
    first = list(handler.run_inference(batch, first_model))
    assert "model" in vars(first_model)  # the weights were needed
    again_model = translate.NllbTranslator(CFG)  # a new process, resuming
    again = translate.NllbHandler(CFG, "response", "response_en", True, cache_dir=str(tmp_path))
    assert list(again.run_inference(batch, again_model)) == first
    assert "model" not in vars(again_model)
