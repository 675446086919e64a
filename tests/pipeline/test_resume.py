"""Runs that die and runs that change one threshold, against a real vLLM server (CPU, tiny
Llama) whose own metrics count the calls: a run killed during generate and run again ends with
the output of a run never interrupted and pays no call twice; a new judge threshold alone
redoes no model call."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline import config as config_mod
from tests.pipeline.conftest import read_jsonl, require_vllm_env
from transforms.models import llm, tiny_models
from transforms.records.cache import read_entries

ROOT = Path(__file__).resolve().parents[2]
LANG = "tel"
# small LLM batches: the cache is flushed per batch, so a kill finds some finished
SMALL_BATCHES = "llm: {records_per_batch: 4, concurrency: 4}\n"


@pytest.fixture(scope="module")
def endpoint():
    cfg = config_mod.load("demo").llm
    python = ROOT / cfg.server_python
    require_vllm_env(python)
    server = llm.VllmServer(str(python), tiny_models.resolve(cfg.model), cfg.server_args, cfg.server_env).start()
    yield server.base_url
    server.stop()


def served(base_url: str) -> int:
    """Requests the server finished, from its Prometheus metrics."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("vllm:request_success_total")))


def command(out: Path, endpoint: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.main", "--langs", LANG, "--output", str(out),
            "--llm-endpoint", endpoint, "--config", str(config)]


def outputs(out: Path) -> dict:
    """What a user gets, order aside: data and reject lines, and the stats."""
    return {
        "data": sorted(json.dumps(r, ensure_ascii=False) for r in read_jsonl(out / "data" / LANG)),
        "rejects": sorted(json.dumps(r, ensure_ascii=False) for r in read_jsonl(out / "rejects" / LANG)),
        "stats": (out / "stats" / f"{LANG}.json").read_text(encoding="utf-8"),
    }


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small-batches.yaml"
    path.write_text(SMALL_BATCHES, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def uninterrupted(endpoint, config_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    before = served(endpoint)
    done = subprocess.run(command(out, endpoint, config_file), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, served(endpoint) - before


@pytest.mark.slow
def test_a_run_killed_during_generate_resumes_to_the_same_output_paying_no_call_twice(
    endpoint, config_file, uninterrupted, tmp_path
):
    reference, calls = uninterrupted
    out = tmp_path / "out"
    run = subprocess.Popen(command(out, endpoint, config_file), cwd=ROOT, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list((out / "cache" / "generate").glob("*.jsonl"))) < 2:
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (out / "stages" / "generate" / LANG / "_COMPLETE.json").exists()
    paid = sum(len(read_entries(str(part))) for kind in ("generate", "judge")
               for part in (out / "cache" / kind).glob("*.jsonl"))
    assert 0 < paid < calls

    before = served(endpoint)
    done = subprocess.run(command(out, endpoint, config_file), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert served(endpoint) - before == calls - paid
    assert outputs(out) == outputs(reference)


@pytest.mark.slow
def test_a_new_judge_threshold_alone_redoes_no_model_call(endpoint, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(SMALL_BATCHES + "judge: {min_score: 5}\n", encoding="utf-8")
    before = served(endpoint)
    subprocess.run(command(out, endpoint, stricter), cwd=ROOT, check=True, capture_output=True)
    assert served(endpoint) == before
    run = json.loads((out / "run.json").read_text())
    assert run["stages"] == {"reused": ["select", "translate", "generate"], "run": ["judge", "backtranslate", "qe"]}
    assert set(run["model_calls"]) == {"judge", "backtranslate", "qe_instruction"}
    assert all(n["made"] == 0 and n["cached"] > 0 for n in run["model_calls"].values())
    stats = json.loads((out / "stats" / f"{LANG}.json").read_text())
    assert stats["config"]["judge"]["min_score"] == 5
