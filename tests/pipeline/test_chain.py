"""The whole method end to end on the sample, on real engines: tiny NLLB and COMET through
transformers and unbabel-comet, a tiny Llama served by a real vLLM server process (CPU) that
the pipeline starts and stops itself."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.methods import NATURAL

STAGES = NATURAL.names
from pipeline.main import main
from tests.pipeline.conftest import load_with_datasets, read_jsonl, require_vllm_env
from tests.pipeline.test_llm_client import FlakyServer
from transforms.models.llm import _free_port

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("tel", "hin")


def vllm_processes(wait_s: float = 30.0) -> str:
    """vLLM servers still running after ``wait_s`` (a stopped server takes seconds to exit)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = subprocess.run(["pgrep", "-af", "vllm.entrypoints.openai.api_server"], capture_output=True, text=True)
        if not found.stdout.strip() or time.monotonic() > deadline:
            return found.stdout.strip()
        time.sleep(0.5)


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    require_vllm_env(ROOT / ".venv-vllm" / "bin" / "python")
    out = tmp_path_factory.mktemp("chain")
    cwd = os.getcwd()
    os.chdir(out)  # not the project: a relative llm.server_python is the project's anyway
    try:
        assert main(["--langs", ",".join(LANGS), "--output", str(out), "--until", "qe"]) == 0
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_every_stage_accounts_for_every_record(chain_run, lang):
    stats = json.loads((chain_run / "stats" / f"{lang}.json").read_text())
    stages = stats["stages"]
    assert list(stages) == list(STAGES[1:])
    expected_in = stats["selected_records"]
    for name, stage in stages.items():
        assert stage["in"] == expected_in, name
        assert stage["in"] == stage["out"] + sum(stage["rejected"].values()), name
        expected_in = stage["out"]
    records = read_jsonl(chain_run / "data" / lang)
    assert len(records) == stages["qe"]["out"] > 0
    rejects = [r for r in read_jsonl(chain_run / "rejects" / lang) if r["stage"] != "select"]
    assert len(rejects) == sum(sum(s["rejected"].values()) for s in stages.values())
    assert len({r["id"] for r in records} | {r["id"] for r in rejects}) == stats["selected_records"]


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGS)
def test_records_carry_every_field_and_their_provenance(chain_run, lang):
    for r in read_jsonl(chain_run / "data" / lang):
        assert r["instruction"] and r["instruction_en"] and r["response_en"] and r["response"]
        assert r["messages"] == [{"role": "user", "content": r["instruction"]},
                                 {"role": "assistant", "content": r["response"]}]
        assert r["task"] in {"open_ended", "qa_context", "summarize", "mcq", "math", "explain", "write_from_title"}
        assert set(r["scores"]) >= {"judge", "qe_response", "qe_instruction"}
        assert 0 <= r["scores"]["judge"] <= 5
        models = r["provenance"]["models"]
        assert set(models) == {"translate", "qe", "generate", "judge", "backtranslate"}
        assert r["provenance"]["prompts"]["generate"] == f"{r['task']}@2"
        assert r["provenance"]["prompts"]["judge"] == "judge@2"


@pytest.mark.slow
def test_records_load_with_datasets_as_a_messages_column(chain_run, tmp_path):
    data = load_with_datasets(chain_run, "tel", tmp_path / "cache")
    assert "messages" in data.column_names and len(data) > 0
    assert [m["role"] for m in data[0]["messages"]] == ["user", "assistant"]


@pytest.mark.slow
def test_no_server_outlives_the_run(chain_run):
    assert vllm_processes() == ""


def run_tel(out: Path, tmp: Path, *beam_args: str) -> None:
    """The demo chain for tel in a subprocess whose temp directory (where vLLM server logs go)
    is ``tmp``."""
    subprocess.run(
        [sys.executable, "-m", "pipeline.main", "--langs", "tel", "--output", str(out), *beam_args],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)}, check=True, timeout=1200, capture_output=True,
    )


def same_records(out: Path, reference: Path, lang: str = "tel") -> bool:
    def by_id(records):
        return sorted(records, key=lambda r: r["id"])
    return by_id(read_jsonl(out / "data" / lang)) == by_id(read_jsonl(reference / "data" / lang))


@pytest.mark.slow
def test_two_worker_processes_share_one_server_and_make_the_same_records(chain_run, tmp_path):
    """--direct_num_workers=2 in multi_processing mode (pickling like a cluster): both worker
    processes use one vLLM server (one server log, two client processes in it), and the
    records are those of the one-worker run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run_tel(tmp_path / "out", tmp, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    (log,) = (tmp_path / "out" / "logs").glob("vllm-*.log")  # the server's log, kept under OUT/logs
    assert len(set(re.findall(r"client process (\d+)", log.read_text()))) == 2
    assert vllm_processes() == ""
    assert same_records(tmp_path / "out", chain_run)


@pytest.mark.slow
def test_the_external_worker_path_makes_the_same_records(chain_run, tmp_path):
    """The path a Flink cluster's workers take: a portable job (embedded job server) whose SDK
    workers come from a worker pool (``--environment_type=EXTERNAL``), started here."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "TMPDIR": str(tmp)}
    pool = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(port)],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        run_tel(tmp_path / "out", tmp, "--runner=PortableRunner", "--job_endpoint=embed",
                "--environment_type=EXTERNAL", f"--environment_config=localhost:{port}")
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=60)
    assert len(list((tmp_path / "out" / "logs").glob("vllm-*.log"))) == 1
    assert vllm_processes() == ""
    assert same_records(tmp_path / "out", chain_run)


@pytest.mark.slow
def test_an_external_endpoint_is_used_instead_of_vllm(tmp_path, monkeypatch):
    """--llm-endpoint: no server is started; an endpoint answering without JSON makes every
    generate answer a counted llm_unparseable reject (the fake echoes the prompt)."""
    import threading

    server = FlakyServer([])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LLM_API_KEY", "secret")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        assert main(["--langs", "spa", "--output", str(tmp_path), "--until", "generate", "--llm-endpoint", url]) == 0
    finally:
        server.shutdown()
        server.server_close()
    stage = json.loads((tmp_path / "stats" / "spa.json").read_text())["stages"]["generate"]
    assert stage["in"] > 0 and stage["rejected"] == {"llm_unparseable": stage["in"]}
    assert server.calls == stage["in"]
