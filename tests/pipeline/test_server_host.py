"""The machine's server host restarts a server that died and gives up after MAX_CRASHES. A real
vLLM server cannot be made to crash on demand (and takes a minute and a half to start), so the
"server" here is a real HTTP server on 127.0.0.1 started through the same command line."""

import os
import signal
import stat
import sys

import pytest

from transforms.models import llm

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
