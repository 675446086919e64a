"""--calibrate's arithmetic (pure): measured tokens and seconds as per-device rates and pass
rates in a `cost` config, and --dry-run's labelling of measured and assumed figures."""

import yaml

from pipeline import config as config_mod
from pipeline.ops import dryrun
from pipeline.ops.calibrate import Measure, calibration, tensor_parallel


def test_rates_are_per_device_and_each_measured_figure_says_how():
    paper = config_mod.load("paper")
    measures = {"nllb": Measure(1000, 2.0, 300, 3.0), "comet": Measure(5000, 1.0), "llm": Measure(8000, 4.0, 1600, 8.0)}
    checks = {"judge_pass_rate": (20, 15), "generate_pass_rate": (20, 20)}
    cost = calibration(paper, measures, checks, "--calibrate on NVIDIA H200", "nvidia-h200")["cost"]
    assert cost["engines"]["nllb"] == {"gpu": "nvidia-h200", "gpus_per_replica": 1, "usd_per_gpu_hour": 0.85,
                                       "input_tokens_per_s": 500.0, "output_tokens_per_s": 100.0}
    # tensor parallel 8: eight devices share the server's rate
    assert cost["engines"]["llm"]["gpus_per_replica"] == 8
    assert cost["engines"]["llm"]["output_tokens_per_s"] == 1600 / 8.0 / 8
    # COMET generates nothing: its output rate is not measured, not written
    assert "output_tokens_per_s" not in cost["engines"]["comet"]
    assert cost["judge_pass_rate"] == 0.75 and cost["generate_pass_rate"] == 1.0
    assert set(cost["measured"]) == {
        "engines.nllb.input_tokens_per_s", "engines.nllb.output_tokens_per_s", "engines.comet.input_tokens_per_s",
        "engines.llm.input_tokens_per_s", "engines.llm.output_tokens_per_s", "judge_pass_rate", "generate_pass_rate"}
    assert cost["measured"]["judge_pass_rate"] == "--calibrate on NVIDIA H200: 15 of 20 records kept"


def test_on_cpu_the_device_is_the_cpu_with_no_price_and_one_device_for_the_llm():
    cost = calibration(config_mod.load("paper"), {"nllb": Measure(), "comet": Measure(), "llm": Measure(10, 1.0, 10, 1.0)},
                       {}, "here", "cpu")["cost"]
    assert cost["engines"]["llm"] == {"gpu": "cpu", "gpus_per_replica": 1, "usd_per_gpu_hour": 0.0,
                                      "input_tokens_per_s": 10.0, "output_tokens_per_s": 10.0}
    # nothing measured for NLLB (no record reached it): the preset's figures stay, unlabelled
    assert cost["engines"]["nllb"]["output_tokens_per_s"] == 300
    assert not any(k.startswith("engines.nllb") for k in cost["measured"])


def test_tensor_parallel_size_from_the_server_args():
    assert tensor_parallel(["--tensor-parallel-size", "8", "--max-model-len", "8192"]) == 8
    assert tensor_parallel(["--tensor-parallel-size=4"]) == 4 and tensor_parallel(["-tp", "2"]) == 2
    assert tensor_parallel([]) == 1


def test_the_dry_run_labels_measured_figures_and_the_rest_as_assumptions(tmp_path):
    cost = calibration(config_mod.load("small"), {"nllb": Measure(), "comet": Measure(), "llm": Measure(900, 1.0, 300, 1.0)},
                       {"judge_pass_rate": (10, 6)}, "--calibrate 2026-12-02 on NVIDIA L4", "nvidia-l4")
    path = tmp_path / "calibration.yaml"
    path.write_text(yaml.safe_dump(cost))
    config = config_mod.load("small", str(path))
    assert config.cost.engines["llm"]["output_tokens_per_s"] == 300.0 and config.cost.judge_pass_rate == 0.6
    lines = dryrun.provenance(config.cost)
    assert lines[0] == ("Measured (--calibrate 2026-12-02 on NVIDIA L4): engines.llm.input_tokens_per_s, "
                        "engines.llm.output_tokens_per_s, judge_pass_rate.")
    assumed = lines[1]
    assert assumed.startswith("Assumptions (not measured): chars_per_token,")
    assert "engines.nllb.output_tokens_per_s" in assumed and "judge_pass_rate" not in assumed
    assert "engines.llm.output_tokens_per_s" not in assumed
    assert dryrun.provenance(config_mod.load("small").cost)[0].startswith("Pass rates, chars per token and throughputs are assumptions")


def test_calibrate_needs_at_least_one_record(capsys, monkeypatch):
    from pathlib import Path

    import pytest

    from pipeline.main import main

    root = Path(__file__).resolve().parents[2]
    if not (root / ".venv-vllm" / "bin" / "python").exists():
        pytest.skip("no vLLM environment: --calibrate checks it first")
    monkeypatch.chdir(root)
    assert main(["--langs", "tel", "--calibrate", "--records", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --records must be at least 1"
