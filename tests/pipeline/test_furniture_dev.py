"""Page furniture on the development set (benchmarks/furniture_dev): the select stage before
and after the furniture rules, measured from the labels (benchmarks/furniture_eval.py)."""

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.pipeline.conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("furniture_eval", ROOT / "benchmarks" / "furniture_eval.py")
furniture_eval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(furniture_eval)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("furniture")


@pytest.fixture(scope="module")
def results(workdir):
    return furniture_eval.evaluate(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("lang", furniture_eval.LANGS)
def test_furniture_leaves_the_responses_and_prose_stays(results, lang):
    before, after = results["before"][lang], results["after"][lang]
    assert before["furniture_share_of_kept"] >= 0.4  # the set has something to remove
    assert after["furniture_share_of_kept"] <= 0.02
    assert after["genuine_recall"] >= 0.95
    assert sum(after["genuine_rejected_as_furniture"].values()) <= 1


@pytest.mark.slow
def test_furniture_kept_over_all_languages(results):
    shares = [m["furniture_share_of_kept"] for m in results["after"].values()]
    assert sum(shares) / len(shares) <= 0.02
    assert len(shares) >= 11


@pytest.mark.slow
@pytest.mark.parametrize("lang", furniture_eval.LANGS)
def test_every_furniture_reason_is_counted_and_in_the_rejects(results, workdir, lang):
    out = workdir / "after"
    stats = json.loads((out / "stats" / f"{lang}.json").read_text())
    p = stats["paragraphs"]
    assert p["read"] == p["kept"] + sum(p["rejected"].values())
    reasons = Counter(r["reason"] for r in read_jsonl(out / "rejects" / lang))
    for reason in ("no_sentence_end", "template_markup", "navigation"):
        assert p["rejected"].get(reason, 0) == reasons[reason] > 0, reason
    assert p["rejected"].get("trailing_sentence", 0) == reasons["trailing_sentence"]
    assert stats["config"]["select"]["furniture"]["navigation_min_documents"] == 2


@pytest.mark.slow
def test_a_prompt_shown_on_one_page_is_a_trailing_sentence(results, workdir):
    """ara and ben each show a site's prompt on one of its pages only (docs/furniture.md)."""
    for lang in ("ara", "ben"):
        reasons = Counter(r["reason"] for r in read_jsonl(workdir / "after" / "rejects" / lang))
        assert reasons["trailing_sentence"] >= 1, lang
