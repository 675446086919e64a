"""The async client's failure handling, against a fake server on 127.0.0.1: the one kind of
fake allowed here, for failures a real vLLM server cannot be made to show on demand."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from transforms.models import llm


class FlakyServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions with the status codes of ``script`` in turn (200 echoes
    the prompt), or sleeps ``hang_s`` first; ``GET /v1/models`` lists one model."""

    def __init__(self, script, hang_s=0.0):
        self.script, self.hang_s, self.calls = list(script), hang_s, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # /v1/models: one model, as a single-model OpenAI-compatible server lists it
        data = json.dumps({"object": "list", "data": [{"id": "served-model", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.calls += 1
            status = self.server.script.pop(0) if self.server.script else 200
        time.sleep(self.server.hang_s)
        if status != 200:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"error": {"message": "boom"}}).encode())
            return
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": body["messages"][0]["content"].upper()}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def serve():
    servers = []

    def start(script=(), hang_s=0.0):
        server = FlakyServer(script, hang_s)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def requests(n):
    return [llm.LlmRequest(({"role": "user", "content": f"q{i}"},), max_tokens=8) for i in range(n)]


def test_results_come_back_in_request_order(serve):
    _, url = serve()
    results = llm.LlmClient(url, "m", concurrency=4).complete(requests(20))
    assert [r.text for r in results] == [f"Q{i}" for i in range(20)]


def test_server_errors_are_retried_with_backoff(serve):
    server, url = serve(script=[500, 503])
    (result,) = llm.LlmClient(url, "m", retries=3, backoff_s=0.01).complete(requests(1))
    assert result.text == "Q0" and result.attempts == 3 and server.calls == 3


def test_persistent_failure_becomes_an_error_result(serve):
    server, url = serve(script=[500] * 10)
    (result,) = llm.LlmClient(url, "m", retries=2, backoff_s=0.01).complete(requests(1))
    assert result.text is None and "500" in result.error and server.calls == 3


def test_bad_requests_are_not_retried(serve):
    server, url = serve(script=[400])
    (result,) = llm.LlmClient(url, "m", retries=3, backoff_s=0.01).complete(requests(1))
    assert result.error and result.attempts == 1 and server.calls == 1


def test_a_hanging_server_times_out(serve):
    _, url = serve(hang_s=3.0)
    start = time.monotonic()
    (result,) = llm.LlmClient(url, "m", timeout_s=0.5, retries=1, backoff_s=0.01).complete(requests(1))
    assert result.error and "Timeout" in result.error
    assert time.monotonic() - start < 2.9


def test_missing_server_environment_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="make vllm-env"):
        llm.VllmServer(str(tmp_path / "nope" / "python"), "m").start()


def test_a_request_in_flight_past_the_warning_threshold_logs_a_line(serve, caplog):
    _, url = serve(hang_s=1.5)
    with caplog.at_level("WARNING", logger="transforms.models.llm"):
        results = llm.LlmClient(url, "m", concurrency=4, timeout_s=10.0, slow_s=0.4).complete(requests(3))
    assert all(r.error is None for r in results)  # slow, not failed: the warning only says so
    lines = [r.getMessage() for r in caplog.records if "in flight" in r.getMessage()]
    assert lines and len(lines) <= 3  # at most one a threshold, not one a request
    import re

    assert re.match(rf"LLM server {url}: [123] of 3 requests in flight for over 0.4 s without an answer \(the oldest "
                    r"(0\.[4-9]|1\.\d) s", lines[0]), lines[0]
    assert "attempt 1 of 4" in lines[0] and "llm.timeout_s 10 s" in lines[0]


def test_a_quick_answer_logs_no_warning(serve, caplog):
    _, url = serve()
    with caplog.at_level("WARNING", logger="transforms.models.llm"):
        llm.LlmClient(url, "m", slow_s=0.4).complete(requests(3))
    assert not [r for r in caplog.records if "in flight" in r.getMessage()]


@pytest.mark.parametrize("bad", [{"retries": -1}, {"concurrency": 0}, {"timeout_s": 0}])
def test_a_client_that_would_send_nothing_is_refused(bad):
    # retries -1 used to send no request and answer every record as unparseable
    with pytest.raises(ValueError, match="retries >= 0"):
        llm.LlmClient("http://127.0.0.1:1/v1", "m", **bad)


def test_a_refused_connection_names_its_cause_and_the_url_without_credentials():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (result,) = llm.LlmClient(f"http://me:pw-secret@127.0.0.1:{port}/v1", "m", retries=0).complete(requests(1))
    assert result.error.startswith("APIConnectionError: Connection error. <- ")
    assert "ConnectionRefusedError" in result.error and "pw-secret" not in result.error
    assert f"(POST http://***@127.0.0.1:{port}/v1/chat/completions)" in result.error
