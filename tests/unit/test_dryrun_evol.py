"""--dry-run --method evol: exact seeds and turns, calls built by the pipeline's own builders."""

import dataclasses
import json

from pipeline.config import load
from pipeline.main import main
from pipeline.ops import dryrun_evol
from pipeline.options import SAMPLE_SEEDS
from transforms.languages import get


def test_a_conversation_makes_two_calls_per_user_turn():
    config = load("small")
    (_, planned), = dryrun_evol.select_seeds(SAMPLE_SEEDS, [get("tel")], config).values()
    for state in planned:
        calls = dryrun_evol.conversation_calls(state, config)
        turns = state["evol"]["turns"]
        assert [len(calls[s]) for s in ("evolve", "turns", "judge")] == [1, 2 * (turns - 1), 1]
        sent, computed, generated = calls["turns"][-1]
        assert sent > computed > calls["turns"][0][1]  # the conversation grows; the rubric is shared
    longer = dataclasses.replace(config, cost=dataclasses.replace(config.cost, evol_message_chars=1200.0))
    assert (dryrun_evol.conversation_calls(planned[0], longer)["turns"][-1][1]
            > dryrun_evol.conversation_calls(planned[0], config)["turns"][-1][1])


def test_the_dry_run_prices_every_evol_stage(tmp_path, capsys):
    assert main(["--method", "evol", "--langs", "tel,hin", "--dry-run", "--preset", "small",
                 "--output", str(tmp_path)]) == 0
    assert "tel    turns" in capsys.readouterr().out
    doc = json.loads((tmp_path / "dryrun.json").read_text())
    assert doc["method"] == "evol"
    stages = doc["languages"]["tel"]["stages"]
    assert [s["stage"] for s in stages] == ["select", "evolve", "turns", "qc", "judge", "balance"]
    assert stages[0]["records_in"] == 9 and stages[0]["records_out"] == 8  # one exact copy dropped
    assert all(s["tokens_in"] > 0 and s["gpu_hours"] > 0 for s in stages if s["stage"] in ("evolve", "turns", "judge"))
