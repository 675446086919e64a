"""--calibrate on the demo preset, on this machine's CPU (tiny NLLB and COMET, a tiny Llama on
a real vLLM server), then --dry-run priced from its output."""

import json
import os

import pytest
import yaml

from pipeline.main import main
from tests.pipeline.test_chain import ROOT, vllm_processes

ENGINE_RATES = {"engines.nllb.input_tokens_per_s", "engines.nllb.output_tokens_per_s",
                "engines.comet.input_tokens_per_s", "engines.llm.input_tokens_per_s",
                "engines.llm.output_tokens_per_s"}
PASS_RATES = {"qe_response_pass_rate", "generate_pass_rate", "judge_pass_rate", "qe_instruction_pass_rate"}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    if not (ROOT / ".venv-vllm" / "bin" / "python").exists():
        pytest.skip("no vLLM environment: run `make vllm-env`")
    out = tmp_path_factory.mktemp("calibrate")
    cwd = os.getcwd()
    os.chdir(ROOT)  # the demo preset names the server's Python relative to the project
    try:
        assert main(["--langs", "tel", "--calibrate", "--records", "12", "--output", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.slow
def test_calibration_measures_every_model_and_check(calibrated):
    cost = yaml.safe_load((calibrated / "calibration.yaml").read_text())["cost"]
    assert set(cost["measured"]) == ENGINE_RATES | PASS_RATES
    for name in ENGINE_RATES:
        _, engine, figure = name.split(".")
        assert cost["engines"][engine][figure] > 0, name
        assert cost["engines"][engine]["gpu"] == "cpu"
    assert all(0 <= cost[name] <= 1 for name in PASS_RATES)
    assert "12 records of tel" in cost["measured"]["generate_pass_rate"]
    # this test's server only (its model is in the session's tiny-model cache): other sessions
    # on the machine may run their own
    ours = os.environ["NATURAL_INSTRUCT_CACHE"]
    assert [line for line in vllm_processes().splitlines() if ours in line] == []


@pytest.mark.slow
def test_the_dry_run_prices_from_the_measurements_and_says_so(calibrated, tmp_path, capsys):
    assert main(["--langs", "tel", "--dry-run", "--output", str(tmp_path / "before")]) == 0
    capsys.readouterr()
    assert main(["--langs", "tel", "--dry-run", "--config", str(calibrated / "calibration.yaml"),
                 "--output", str(tmp_path / "after")]) == 0
    printed = capsys.readouterr().out
    before = json.loads((tmp_path / "before" / "dryrun.json").read_text())
    after = json.loads((tmp_path / "after" / "dryrun.json").read_text())
    cost = yaml.safe_load((calibrated / "calibration.yaml").read_text())["cost"]
    # used: the demo's CPU models priced no hours; measured on this CPU they take hours
    assert before["total"]["gpu_hours"] == 0 and after["total"]["gpu_hours"] > 0
    assert after["engines"]["llm"]["output_tokens_per_s"] == cost["engines"]["llm"]["output_tokens_per_s"]
    stages = {s["stage"]: s for s in after["languages"]["tel"]["stages"]}
    llm = after["engines"]["llm"]
    generate = stages["generate"]
    assert generate["gpu_hours"] * 3600 >= generate["tokens_out"] / llm["output_tokens_per_s"] * 0.999
    # labelled: which figures were measured, which remain assumptions
    assert set(after["measured"]) == ENGINE_RATES | PASS_RATES and before["measured"] == {}
    assert "chars_per_token" in after["assumed"] and not set(after["assumed"]) & set(after["measured"])
    assert "Measured (--calibrate " in printed and "Assumptions (not measured): chars_per_token" in printed
