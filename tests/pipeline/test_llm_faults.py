"""Runs of generate and judge (``python -m pipeline.main --until judge``, started at generate
from a seeded translate checkpoint) against an endpoint that fails on purpose: every record
ends kept or rejected once, transient errors (``llm_error``) stay within the error budget or
fail the run, and a re-run sends exactly the records that failed."""

import json
import os
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest

from tests.pipeline.conftest import read_jsonl
from tests.pipeline.fault_server import FaultServer, seed_translated

ROOT = Path(__file__).resolve().parents[2]
LANG = "tel"
# Short timeouts and backoff, so the faults cost seconds; full batches; a concurrency the
# fake and the client serve without queueing past the timeout on 2 busy cores.
LLM = {"model": "fault-model", "records_per_batch": 1000, "concurrency": 16, "timeout_s": 2.0,
       "retries": 3, "backoff_s": 0.05}
HANG_S = 300.0  # a hang lasts far longer than the timeout: only the client's timeout ends it
SOAK = 5000


def write_config(path: Path, llm: dict, **top) -> Path:
    config = {"llm": llm, "generate": {"tasks": {"open_ended@1": 1.0, "mcq@1": 1.0}, "max_instruction_chars": 4000},
              **top}
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp: Path, out: Path, config: Path, url: str) -> tuple[subprocess.CompletedProcess, float]:
    """The pipeline as a user runs it, from a directory that is not the project's."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.main", "--langs", LANG, "--input", str(tmp / "tel.txt"),
         "--output", str(out), "--config", str(config), "--until", "judge", "--llm-endpoint", url],
        cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600,
    )
    return result, time.monotonic() - start


def accounted(out: Path, ids: list[str]) -> dict:
    """Every seeded id ends exactly once, kept or rejected, and the stats add up."""
    stats = json.loads((out / "stats" / f"{LANG}.json").read_text())
    generate, judge = stats["stages"]["generate"], stats["stages"]["judge"]
    assert generate["in"] == len(ids) == generate["out"] + sum(generate["rejected"].values())
    assert judge["in"] == generate["out"] == judge["out"] + sum(judge["rejected"].values())
    kept = read_jsonl(out / "data" / LANG)
    rejected = read_jsonl(out / "rejects" / LANG)
    assert len(kept) == judge["out"]
    assert Counter(r["id"] for r in kept + rejected) == Counter(ids)
    return stats["stages"]


@pytest.fixture
def soak(tmp_path):
    """``SOAK`` translated records, ready for generate."""
    return tmp_path, seed_translated(tmp_path / "out", tmp_path / "tel.txt", write_config(tmp_path / "c.yaml", LLM), SOAK)


@pytest.mark.slow
def test_soak_5000_records_through_500s_hangs_dropped_connections_and_malformed_json(soak):
    tmp, ids = soak
    faults = {"500": 0.10, "hang": 0.02, "drop": 0.02, "malformed": 0.02}
    with FaultServer(faults, hang_s=HANG_S, seed=1) as server:
        result, wall_s = run(tmp, tmp / "out", tmp / "c.yaml", server.url)
    assert result.returncode == 0, result.stderr[-3000:]
    stages = accounted(tmp / "out", ids)
    assert all(server.counts[fault] > 0 for fault in faults), server.counts
    errors = sum(stages[stage]["rejected"].get("llm_error", 0) for stage in ("generate", "judge"))
    assert errors <= 0.05 * SOAK
    assert server.calls >= 2 * SOAK  # generate and judge for every record, and the retries
    # ~200 hangs: each ends at the client's timeout, not the server's HANG_S
    assert wall_s < HANG_S, wall_s
    print(f"soak: {wall_s:.1f} s, {server.calls} requests {server.counts}, llm_error {errors}")


@pytest.mark.slow
def test_a_total_outage_fails_the_run_on_the_error_budget(soak):
    tmp, _ = soak
    with FaultServer({"500": 1.0}) as down:
        result, wall_s = run(tmp, tmp / "out", tmp / "c.yaml", down.url)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    # it stops at the first reject past the budget (251 of 5000), in the first batch
    over = int(0.05 * SOAK) + 1
    assert last.startswith(f"error: the run failed: ErrorBudgetExceeded: generate (tel): at least "
                           f"{over} of {SOAK} records (5.0%) ended in llm_error (first errors: {over} x "
                           "InternalServerError: Error code: 500"), last
    assert f"(POST {down.url}/chat/completions)), over the error budget of 5%" in last
    assert "Traceback" not in result.stderr and "Traceback" in (tmp / "out" / "error.txt").read_text()
    assert not (tmp / "out" / "stages" / "generate" / LANG / "_COMPLETE.json").exists()
    assert down.calls == LLM["records_per_batch"] * (LLM["retries"] + 1)
    print(f"outage: {wall_s:.1f} s, {down.calls} requests")


def test_a_rerun_sends_exactly_the_records_that_ended_in_llm_error(tmp_path):
    n = 300
    llm = {**LLM, "retries": 1, "records_per_batch": 100}
    config = write_config(tmp_path / "c.yaml", llm, max_transient_error_share=0.5)
    ids = seed_translated(tmp_path / "out", tmp_path / "tel.txt", config, n)
    # fails the same prompts every time
    with FaultServer(fail=lambda prompt: zlib.crc32(prompt.encode()) % 8 == 0) as flaky:
        first, _ = run(tmp_path, tmp_path / "out", config, flaky.url)
    assert first.returncode == 0, first.stderr[-3000:]
    stages = accounted(tmp_path / "out", ids)
    failed = {stage: stages[stage]["rejected"].get("llm_error", 0) for stage in ("generate", "judge")}
    assert failed["generate"] > 0 and failed["judge"] > 0
    assert (f"{sum(failed.values())} records ended in transient errors (generate llm_error: {failed['generate']}, "
            f"judge llm_error: {failed['judge']})") in first.stderr.strip().splitlines()[-1]

    with FaultServer() as healthy:
        second, _ = run(tmp_path, tmp_path / "out", config, healthy.url)
    assert second.returncode == 0, second.stderr[-3000:]
    stages = accounted(tmp_path / "out", ids)
    assert not any("llm_error" in stages[stage]["rejected"] for stage in ("generate", "judge"))
    # generate: the records it failed; judge: those it failed, and those generate just wrote
    calls = json.loads((tmp_path / "out" / "run.json").read_text())["model_calls"]
    assert calls["generate"] == {"made": failed["generate"], "cached": n - failed["generate"]}
    assert calls["judge"]["made"] == failed["generate"] + failed["judge"]
    assert healthy.calls == 2 * failed["generate"] + failed["judge"]
    assert "records ended in transient errors" not in second.stderr  # only the plan's "retrying ..." line
    assert "retrying the records that ended in transient errors" in second.stderr


def test_an_unreachable_endpoint_fails_naming_the_cause_and_the_url_without_its_secrets(tmp_path):
    config = write_config(tmp_path / "c.yaml", {**LLM, "retries": 1, "records_per_batch": 40})
    seed_translated(tmp_path / "out", tmp_path / "tel.txt", config, 40)
    port = closed_port()
    result, _ = run(tmp_path, tmp_path / "out", config, f"http://user:pw-secret@127.0.0.1:{port}/v1?api_key=sk-query")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the run failed: ErrorBudgetExceeded: generate (tel): at least 3 of 40 records"), last
    # the first underlying error: the exception, its cause, how many records, the URL without secrets
    assert "(first errors: 3 x APIConnectionError: Connection error." in last
    assert "ConnectionRefusedError" in last and f"http://***@127.0.0.1:{port}/v1" in last and "api_key=***" in last
    assert last.endswith(f"(traceback: {tmp_path / 'out'}/error.txt)")
    for text in (result.stderr, (tmp_path / "out" / "error.txt").read_text()):
        assert "pw-secret" not in text and "sk-query" not in text
    assert not (tmp_path / "out" / "stages" / "generate" / LANG / "_COMPLETE.json").exists()


def test_endpoint_credentials_stay_out_of_the_outputs_and_a_local_model_is_not_sent_as_the_name(tmp_path):
    n = 20
    # the demo's local stand-in model: the endpoint is asked which model it serves
    config = write_config(tmp_path / "c.yaml", {**LLM, "model": "tiny:llama", "records_per_batch": n})
    ids = seed_translated(tmp_path / "out", tmp_path / "tel.txt", config, n)
    with FaultServer(served=("served-llama",)) as server:
        host = server.url.replace("http://", "http://user:pw-secret@") + "?api_key=sk-query"
        result, _ = run(tmp_path, tmp_path / "out", config, host)
    assert result.returncode == 0, result.stderr[-3000:]
    accounted(tmp_path / "out", ids)
    assert server.models == {"served-llama": 2 * n}  # generate and judge, by the name it serves
    stats = json.loads((tmp_path / "out" / "stats" / f"{LANG}.json").read_text())
    assert stats["config"]["llm"]["endpoint"] == server.url.replace("http://", "http://***@") + "?api_key=***"
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".md", ".txt", ".yaml"):
            text = path.read_text(errors="replace")
            assert "pw-secret" not in text and "sk-query" not in text, path


def test_an_endpoint_serving_several_models_asks_for_llm_model(tmp_path):
    config = write_config(tmp_path / "c.yaml", {**LLM, "model": "tiny:llama", "records_per_batch": 10})
    seed_translated(tmp_path / "out", tmp_path / "tel.txt", config, 10)
    with FaultServer(served=("a-model", "b-model")) as server:
        result, _ = run(tmp_path, tmp_path / "out", config, server.url)
    assert result.returncode == 1 and server.calls == 0
    last = result.stderr.strip().splitlines()[-1]
    assert "serves a-model, b-model: set llm.model to the one to use" in last, last
