"""Adding a model stage is one module and one line: the toy stage of ``toy_stage.py``, put in
the natural method after select, runs end to end through the command line with its checkpoint,
its counts, its row in the report and its line in the dry run."""

import dataclasses
import json

from pipeline.main import main
from pipeline.methods import METHODS, NATURAL
from tests.pipeline.conftest import read_jsonl
from tests.pipeline.toy_stage import TOY, TOY_LOW


def test_a_toy_model_stage_runs_end_to_end(tmp_path, monkeypatch):
    # the one line: the method lists the stage
    monkeypatch.setitem(METHODS, "natural", dataclasses.replace(NATURAL, stages=(NATURAL.stages[0], TOY,
                                                                                 *NATURAL.stages[1:])))
    out = tmp_path / "out"
    assert main(["--langs", "tel", "--until", "toy", "--output", str(out)]) == 0

    stats = json.loads((out / "stats" / "tel.json").read_text(encoding="utf-8"))
    toy = stats["stages"]["toy"]
    assert toy["in"] == stats["selected_records"] > 0
    assert toy["in"] == toy["out"] + sum(toy["rejected"].values()) and set(toy["rejected"]) <= {TOY_LOW}
    records = read_jsonl(out / "data" / "tel")
    assert len(records) == toy["out"] > 0
    assert all(r["scores"]["toy"] >= 0.5 and r["provenance"]["models"]["toy"] == "letter-share" for r in records)
    rejects = [r for r in read_jsonl(out / "rejects" / "tel") if r["stage"] == "toy"]
    assert len(rejects) == sum(toy["rejected"].values())
    assert (out / "stages" / "toy" / "tel" / "_COMPLETE.json").exists()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| toy | letter share |" in report and "| tel | toy | records |" in report

    # a re-run takes both stages from their checkpoints
    assert main(["--langs", "tel", "--until", "toy", "--output", str(out)]) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["stages"] == {"reused": ["select", "toy"], "run": []}
    assert read_jsonl(out / "data" / "tel") == records

    # the dry run prices it from its declaration
    dry = tmp_path / "dry"
    assert main(["--langs", "tel", "--until", "toy", "--dry-run", "--output", str(dry)]) == 0
    stages = json.loads((dry / "dryrun.json").read_text(encoding="utf-8"))["languages"]["tel"]["stages"]
    assert [s["stage"] for s in stages] == ["select", "toy"]
    assert stages[1]["records_out"] == stages[1]["records_in"] * 0.9 and stages[1]["tokens_in"] > 0
