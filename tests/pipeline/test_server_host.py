"""The machine's server host restarts a server that died (between batches or during one) or
wedged, and gives up after MAX_CRASHES naming the server's own last error. A real vLLM server
cannot be made to crash on demand (and takes a minute and a half to start), so the "server" here
is a real HTTP server on 127.0.0.1 started through the same command line, as a real process."""

import os
import signal
import stat
import sys

import pytest

from transforms.models import llm
from transforms.models.config import LlmConfig
from transforms.models.generate import JudgeConfig, JudgeStep
from transforms.models.llm_handler import LlmHandler

FAKE_PYTHON = f"""#!{sys.executable}
# Stands in for the vLLM environment's python: `-m vllm.entrypoints.openai.api_server ... --port N`
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Models(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{{"data": []}}')

port = int(sys.argv[sys.argv.index("--port") + 1])
HTTPServer(("127.0.0.1", port), Models).serve_forever()
"""


@pytest.fixture
def host(tmp_path):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    host = llm._ServerHost("test-host", (str(python), "tiny", (), {}, 30.0))
    yield host
    llm.stop_all()


def kill(host):
    host.server.process.send_signal(signal.SIGKILL)
    host.server.process.wait()


def test_a_server_that_died_is_restarted_then_given_up_on(host):
    first = host.base_url(os.getpid())
    assert host.base_url(os.getpid()) == first  # alive: the same server
    for crashes in range(1, llm.MAX_CRASHES + 1):
        dead = host.server.process.pid
        kill(host)
        host.base_url(os.getpid())
        assert host.server.process.pid != dead and host.server.process.poll() is None
        assert host.crashes == crashes
    kill(host)
    with pytest.raises(RuntimeError, match="died"):
        host.base_url(os.getpid())


def test_a_server_stopped_at_the_end_of_a_run_starts_afresh_without_counting_a_crash(host):
    host.base_url(os.getpid())
    llm.stop_all()
    host.base_url(os.getpid())
    assert host.crashes == 0 and host.server.process.poll() is None


def test_the_log_names_each_client_process_once(host):
    host.base_url(111)
    host.base_url(222)
    host.base_url(111)
    log = open(host.server.log_path, encoding="utf-8").read()
    assert log.count("client process 111") == 1 and log.count("client process 222") == 1


# A stand-in that also answers chat completions and /health, and fails as FAKE_MODE says until
# the file FAKE_MARK exists (the first server creates it: the restarted one is healthy).
# die: the process exits on its first chat request, logging an engine error as vLLM does;
# wedge: chat requests never get an answer, and /health answers 503 from then on.
ENGINE_FAKE = f"""#!{sys.executable}
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

mode, mark = os.environ.get("FAKE_MODE", ""), os.environ.get("FAKE_MARK", "")
failing = mode == "always-die" or (mode and not os.path.exists(mark))
wedged = threading.Event()
print("INFO starting", sys.argv, flush=True)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(503 if self.path == "/health" and wedged.is_set() else 200, {{"data": []}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if failing and mode in ("die", "always-die"):
            open(mark, "w").close()
            print("ERROR EngineCore failed: RuntimeError: injected engine failure", flush=True)
            os._exit(1)
        if failing and mode == "wedge":
            open(mark, "w").close()
            wedged.set()
            time.sleep(600)
        self._send(200, {{"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{{"index": 0, "finish_reason": "stop",
                                      "message": {{"role": "assistant", "content": "ok"}}}}]}})

port = int(sys.argv[sys.argv.index("--port") + 1])
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def engine_handler(tmp_path, mode):
    python = tmp_path / "engine-python"
    python.write_text(ENGINE_FAKE)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    cfg = LlmConfig(model="fake-model", server_python=str(python), retries=0, timeout_s=2.0, concurrency=4,
                    startup_timeout_s=30.0, server_env={"FAKE_MODE": mode, "FAKE_MARK": str(tmp_path / "mark")})
    return LlmHandler(JudgeStep(JudgeConfig(), 0, cfg.model), cfg, str(tmp_path / "out" / "cache"))


def asks(n=6):
    return [llm.LlmRequest(({"role": "user", "content": f"q{i}"},), max_tokens=4) for i in range(n)]


@pytest.mark.parametrize("mode", ["die", "wedge"])
def test_a_server_that_dies_or_wedges_mid_batch_is_restarted_and_the_batch_sent_again(tmp_path, mode, caplog):
    handler = engine_handler(tmp_path, mode)
    try:
        answers = handler.answers(handler.load_model(), asks())
        host = handler._host()
        assert [a["error"] for a in answers] == [None] * 6 and [a["text"] for a in answers] == ["ok"] * 6
        # the first server, dead or killed once found wedged: one restart, with a warning why
        (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "vLLM server" in r.getMessage()]
        assert "(restart 1 of 2)" in warning
        assert ("died (exit 1)" if mode == "die" else "stopped answering its health check") in warning
        # the server's log is kept with the run's outputs, the restarted one's too
        logs = sorted((tmp_path / "out" / "logs").glob("vllm-*.log"))
        assert len(logs) == 2 and handler.server_log == host.log_path() and handler.server_log in map(str, logs)
        if mode == "die":
            assert any("injected engine failure" in log.read_text() for log in logs)
    finally:
        llm.stop_all()


def test_a_server_that_keeps_dying_fails_with_its_own_last_error(tmp_path):
    handler = engine_handler(tmp_path, "always-die")
    client = handler.load_model()
    try:
        with pytest.raises(RuntimeError) as failure:
            for _ in range(llm.MAX_CRASHES + 2):
                handler.answers(client, asks(2))
        message = str(failure.value)
        assert f"more than the {llm.MAX_CRASHES} restarts" in message
        assert "its last error: ERROR EngineCore failed: RuntimeError: injected engine failure" in message
        assert str(tmp_path / "out" / "logs") in message
    finally:
        llm.stop_all()
