"""Page furniture on the development set (benchmarks/furniture_dev): the select stage before
and after the furniture rules, measured from the labels (benchmarks/furniture_eval.py)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("furniture_eval", ROOT / "benchmarks" / "furniture_eval.py")
furniture_eval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(furniture_eval)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return furniture_eval.evaluate(tmp_path_factory.mktemp("furniture"))


@pytest.mark.slow
@pytest.mark.parametrize("lang", furniture_eval.LANGS)
def test_furniture_leaves_the_responses_and_prose_stays(results, lang):
    before, after = results["before"][lang], results["after"][lang]
    assert before["furniture_share_of_kept"] >= 0.4  # the set has something to remove
    # what stays (docs/furniture.md): a site's prompt sentence shown on one page only, a site's
    # one-line menu whose items no other page of the batch shows as lines of their own
    assert after["furniture_share_of_kept"] <= 0.15
    assert set(after["furniture_kept"]) <= {"prompt", "menu"}
    assert after["genuine_recall"] >= 0.95


@pytest.mark.slow
def test_furniture_kept_over_all_languages(results):
    shares = [m["furniture_share_of_kept"] for m in results["after"].values()]
    assert sum(shares) / len(shares) <= 0.04
    assert len(shares) >= 8
