"""The command line as users run it: a real subprocess, exit codes and one-line errors."""

import json
import os
import subprocess
import sys

import pytest


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.main", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--langs", "xx"], "unknown language code 'xx'"),
        (["--langs", "../etc"], "unknown language code"),
        ([], "--langs is required"),
        (["--langs", "tel", "--input", "/nonexistent/{lang}.txt"], "no input files match"),
        (["--langs", "tel", "--config", "/nonexistent.yaml"], "cannot read config"),
    ],
)
def test_bad_arguments_fail_fast_with_one_line(args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0  # one line, no traceback


def test_select_on_own_input_with_cc100_names(tmp_path):
    # a CC-100 style file named by CC-100's code, read through the {cc100} placeholder
    (tmp_path / "es.txt").write_text(
        "Toda persona tiene derecho a la educación, que debe ser gratuita al menos en lo básico.\n"
        "La instrucción elemental será obligatoria y la técnica estará al alcance de todos.\n\n"
        "HAGA CLIC AQUÍ PARA GANAR UN PREMIO GRATIS AHORA MISMO\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = cli("--langs", "spa", "--input", str(tmp_path / "{cc100}.txt"), "--output", str(out),
                 "--until", "select")
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats" / "spa.json").read_text())
    assert stats["paragraphs"] == {"read": 3, "kept": 2, "rejected": {"too_many_capitals": 1}}
    (record,) = [json.loads(x) for f in (out / "data" / "spa").glob("part-*") for x in f.read_text().splitlines()]
    assert record["source"] == {"name": "cc100", "kind": "cc100", "file": "es.txt", "doc": 0, "paragraphs": [0, 1]}


def test_missing_vllm_environment_fails_before_any_work(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("llm: {server_python: /nonexistent/bin/python}\n")
    result = cli("--langs", "tel", "--config", str(config), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "make vllm-env" in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_a_failing_run_exits_non_zero_with_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("translate: {model: /nonexistent/nllb}\n")
    out = tmp_path / "out"
    result = cli("--langs", "tel", "--config", str(config), "--output", str(out), "--until", "translate")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the run failed:") and "error.txt" in last
    assert "nonexistent" in (out / "error.txt").read_text()


def test_an_option_neither_ours_nor_beams_fails_fast_with_one_line(tmp_path):
    result = cli("--langs", "tel", "--until", "select", "--outptu", str(tmp_path / "out2"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: unknown option --outptu: neither this pipeline's nor an Apache Beam "
                                     "pipeline option (see --help); did you mean --output?")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_beams_own_options_pass(tmp_path):
    # --from-stage on an empty output fails after the options are checked, before any work
    result = cli("--langs", "tel", "--output", str(tmp_path / "out"), "--runner=FnApiRunner",
                 "--direct_num_workers", "1", "--temp_location=/tmp", "--experiments=a", "--dry_run=True",
                 "--until", "translate", "--from-stage", "translate")
    assert result.returncode == 2
    assert "stage select has no complete checkpoint" in result.stderr


def test_a_language_the_sample_lacks_says_what_it_holds_and_that_input_is_needed():
    result = cli("--langs", "rus")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "the bundled sample holds only hin, jpn, spa, tel, not rus" in result.stderr
    assert "--input" in result.stderr


def test_the_vllm_environment_is_found_from_any_directory(tmp_path):
    from pipeline.config import load
    from transforms.models.config import PROJECT_DIR, project_path

    python = load("demo").llm.server_python
    if not (PROJECT_DIR / python).exists():
        pytest.skip("no vLLM environment: run `make vllm-env`")
    assert project_path(python) == str(PROJECT_DIR / python)
    assert project_path("no/such/python") == "no/such/python"  # e.g. the worker image's WORKDIR
    # the vLLM environment is checked first; --from-stage on an empty output then stops the run
    result = cli("--langs", "tel", "--output", str(tmp_path / "out"), "--from-stage", "generate", cwd=tmp_path)
    assert result.returncode == 2
    assert "stage select has no complete checkpoint" in result.stderr


def test_a_model_that_cannot_load_is_one_line_with_its_cause(tmp_path):
    # no hub access: the laptop preset's NLLB is neither cached nor reachable
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.main", "--langs", "tel", "--preset", "laptop", "--output", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "error" in x.lower()]
    assert line.startswith("error: the run failed: OSError: We couldn't connect to 'https://huggingface.co'")
    assert line.endswith(f"[while running 'Translate/Translate/BeamML_RunInference'] (traceback: {out}/error.txt)")
    assert (out / "error.txt").read_text().count("Traceback") >= 2


@pytest.mark.parametrize(
    "args, line",
    [
        (["--records", "5"], "error: --records applies only with --calibrate (see --help)"),
        (["--calibrate", "--dry-run"], "error: --dry-run does not apply with --calibrate (see --help)"),
        (["--calibrate", "--until", "generate"], "error: --until does not apply with --calibrate (see --help)"),
        (["--calibrate", "--from-stage", "judge"], "error: --from-stage does not apply with --calibrate (see --help)"),
        (["--dry-run", "--from-stage", "judge"], "error: --from-stage does not apply with --dry-run (see --help)"),
    ],
)
def test_a_flag_that_would_be_ignored_fails_fast_with_one_line(tmp_path, args, line):
    result = cli("--langs", "tel", "--output", str(tmp_path / "out"), *args)
    assert result.returncode == 2 and result.stderr.strip() == line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text, start",
    [
        ("llm: {retries: -1}", "error: config.llm.retries: must be >= 0, got -1"),
        ("judge: {min_score: 7}", "error: config.judge.min_score: must be in [0, 5], got 7"),
        ("llm: {server_args: [--api-key, sk-in-file]}", "error: config.llm.server_args: --api-key does not belong in a config file: set $VLLM_API_KEY"),
    ],
)
def test_a_setting_out_of_its_range_fails_before_any_work_naming_its_key(tmp_path, text, start):
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n")
    result = cli("--langs", "tel", "--config", str(config), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(start), result.stderr
    assert "sk-in-file" not in result.stderr and not (tmp_path / "out").exists()
