"""An OpenAI-compatible chat endpoint on 127.0.0.1 that fails on purpose: the one kind of fake
allowed in the tests, for failures a real vLLM server cannot be made to show on demand (500s,
hangs, dropped connections, malformed JSON). Its answers follow the request's structured
output, as vLLM's would: a JSON object for generate's schema, a ``...\\nScore: N`` ending for
the judge. And the helpers that put records in front of generate: a translate checkpoint made
with the pipeline's own writers, so a real run (``python -m pipeline.main``) starts at generate.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline import config as config_mod
from pipeline.ops import resume
from transforms.records import checkpoint

FAULTS = ("500", "hang", "drop", "malformed")


class FaultServer(ThreadingHTTPServer):
    """Answers each request, or fails it with the probabilities of ``faults`` (fault -> share of
    requests, drawn from ``seed``), or fails it with a 500 when ``fail(prompt)`` says so. A
    hang waits ``hang_s`` (far longer than the client's timeout), or until ``close``, before
    answering. ``counts`` has
    the outcome of every request, ``models`` the model names they asked for; ``GET /v1/models``
    lists ``served``, as vLLM's does."""

    daemon_threads = True
    request_queue_size = 1024  # the client opens up to llm.concurrency connections at once

    def __init__(self, faults: dict[str, float] | None = None, hang_s: float = 300.0, seed: int = 0,
                 fail=None, served: tuple[str, ...] = ("fault-model",)):
        self.faults, self.hang_s, self.fail, self.served = faults or {}, hang_s, fail, served
        self.models: dict[str, int] = {}
        self.closing = threading.Event()  # ends the hangs
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"ok": 0, **{fault: 0 for fault in FAULTS}}
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return sum(self.counts.values())

    def outcome(self, prompt: str, model: str = "") -> str:
        with self.lock:
            self.models[model] = self.models.get(model, 0) + 1
            draw = self.random.random()
            outcome = "500" if self.fail and self.fail(prompt) else "ok"
            for fault, share in self.faults.items():
                if outcome == "ok" and draw < share:
                    outcome = fault
                draw -= share
            self.counts[outcome] += 1
        return outcome

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout) resets its connection: expected here

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()

    def __exit__(self, *exc) -> None:  # socketserver's own only closes the socket
        self.close()


def answer(body: dict) -> str:
    """What a model under the request's structured output could say."""
    structured = (body.get("structured_outputs") or {})
    prompt = body["messages"][-1]["content"]
    if "json" in structured:
        return json.dumps(_fill(structured["json"], zlib.crc32(prompt.encode())))
    return f"A fair pair.\nScore: {zlib.crc32(prompt.encode()) % 6}"


def _fill(schema: dict, n: int):
    if "enum" in schema:
        return schema["enum"][n % len(schema["enum"])]
    if schema.get("type") == "object":
        return {k: _fill(v, n + i) for i, (k, v) in enumerate(schema["properties"].items())}
    return f"Question {n} about the text?"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM's server

    def log_message(self, *args):
        pass

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # /v1/models
        self._send(200, json.dumps({"object": "list", "data": [
            {"id": name, "object": "model"} for name in self.server.served]}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        outcome = self.server.outcome(body["messages"][-1]["content"], body.get("model", ""))
        if outcome == "500":
            return self._send(500, json.dumps({"error": {"message": "injected"}}).encode())
        if outcome == "drop":  # the connection closes without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if outcome == "malformed":
            return self._send(200, b'{"id": "x", "object": "chat.completion", "choices": [{"ind')
        if outcome == "hang":
            self.server.closing.wait(self.server.hang_s)
        payload = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer(body)}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        try:
            return self._send(200, json.dumps(payload).encode())
        except OSError:  # the client gave up on a hang
            return None


def seed_translated(out: Path, input_file: Path, config_file: Path, n: int, lang: str = "tel") -> list[str]:
    """Complete select and translate checkpoints holding ``n`` translated records, with the
    fingerprints a run of ``--input input_file --config config_file --until judge`` computes,
    so that run starts at generate. Returns the records' ids."""
    input_file.write_text("one paragraph\n", encoding="utf-8")
    config = config_mod.load("demo", str(config_file))
    prints = resume.fingerprints(config, {lang: str(input_file)}, "judge")
    records = [
        {"id": f"rec{i:06d}", "lang": lang, "response": f"పాఠం సంఖ్య {i}", "response_en": f"Text number {i}.",
         "source": {"file": input_file.name, "doc": i, "paragraphs": [0, 0]}}
        for i in range(n)
    ]
    rows = [(r["id"], json.dumps(r, ensure_ascii=False)) for r in records]
    path = f"{checkpoint.stage_dir(str(out), 'translate', lang)}/records.parquet"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_rows(path, lang, rows)
    shard = ("records", path, n)
    stats = {
        "select": [("paragraphs.read", n), ("paragraphs.kept", n), ("selected_records", n)],
        "translate": [("stages.translate.in", n), ("stages.translate.out", n)],
    }
    for stage, files in (("select", []), ("translate", [shard])):
        checkpoint._write_marker((lang, {"files": files, "stats": stats[stage]}), str(out), stage, prints[stage])
    return [r["id"] for r in records]
