"""One async client for an OpenAI-compatible server, and the vLLM server it may start.

``LlmClient.complete`` sends a whole batch concurrently (the server batches continuously),
bounded by ``concurrency``, each request with a timeout and retries with exponential backoff.
A request that still fails becomes an ``LlmResult`` with an ``error``: a counted reject for
the stage, never a crash and never silence.

``VllmServer`` starts ``python -m vllm.entrypoints.openai.api_server`` from the Python of a
separate environment (vLLM needs transformers >= 5; this one has < 5), waits until
``/v1/models`` answers, and stops it with the process that started it (``stop_all``, atexit,
and the parent-death signal on Linux), so no server outlives a run.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

LLM_ERROR = "llm_error"
# HTTP statuses no retry can fix: a bad request (e.g. a prompt over the context length),
# authentication, a missing model.
_FINAL = {400, 401, 403, 404, 422}


@dataclass(frozen=True)
class LlmRequest:
    messages: tuple[dict, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    schema: dict | None = None  # JSON schema for vLLM structured outputs
    regex: str | None = None  # or a regular expression the output must match


@dataclass(frozen=True)
class LlmResult:
    text: str | None
    error: str | None = None
    attempts: int = 1
    usage: dict = field(default_factory=dict)


class LlmClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        concurrency: int = 64,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 1.0,
    ):
        self.base_url, self.model, self.api_key = base_url, model, api_key
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.retries, self.backoff_s = retries, backoff_s

    def complete(self, requests: Sequence[LlmRequest]) -> list[LlmResult]:
        """Results in request order. Runs the coroutine on a fresh event loop (a Beam DoFn
        has none); call ``complete_async`` from async code."""
        return asyncio.run(self.complete_async(requests))

    async def complete_async(self, requests: Sequence[LlmRequest]) -> list[LlmResult]:
        from openai import AsyncOpenAI

        gate = asyncio.Semaphore(self.concurrency)
        async with AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
        ) as client:
            return list(await asyncio.gather(*(self._one(client, gate, r) for r in requests)))

    async def _one(self, client, gate: asyncio.Semaphore, request: LlmRequest) -> LlmResult:
        extra = None
        if request.schema:
            extra = {"structured_outputs": {"json": request.schema}}
        elif request.regex:
            extra = {"structured_outputs": {"regex": request.regex}}
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                async with gate:
                    response = await client.chat.completions.create(
                        model=self.model,
                        messages=list(request.messages),
                        max_tokens=request.max_tokens,
                        temperature=request.temperature,
                        top_p=request.top_p,
                        seed=request.seed,
                        extra_body=extra,
                    )
                usage = response.usage.model_dump() if response.usage else {}
                return LlmResult(response.choices[0].message.content, None, attempt, usage)
            except Exception as e:  # noqa: BLE001 - failures are retried, then reported
                error = f"{type(e).__name__}: {e}"[:300]
                if getattr(e, "status_code", None) in _FINAL:
                    return LlmResult(None, error, attempt)
                if attempt <= self.retries:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
        return LlmResult(None, error, self.retries + 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child before exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VllmServer:
    """A vLLM OpenAI-compatible server on 127.0.0.1, started from ``python``."""

    def __init__(self, python: str, model: str, args: Sequence[str] = (), env: dict | None = None,
                 startup_timeout_s: float = 900.0):
        self.python, self.model, self.args = python, model, tuple(args)
        self.env, self.startup_timeout_s = env or {}, startup_timeout_s
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="vllm-", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> VllmServer:
        if not os.path.exists(self.python):
            raise RuntimeError(
                f"vLLM server Python {self.python} not found: build it with `make vllm-env` "
                "or set llm.endpoint / --llm-endpoint to an existing server"
            )
        cmd = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        logger.info("starting vLLM: %s (log %s)", " ".join(cmd), self.log.name)
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"), **self.env}
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=_die_with_parent)
        _RUNNING.add(self)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as r:
                    if r.status == 200:
                        logger.info("vLLM ready on port %d", self.port)
                        return self
            except OSError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"vLLM server not healthy after {self.startup_timeout_s:.0f} s: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _RUNNING.discard(self)


_RUNNING: set[VllmServer] = set()
_SHARED: dict[tuple, VllmServer] = {}
_LOCK = threading.Lock()


def shared_server(python: str, model: str, args: Sequence[str], env: dict, timeout_s: float) -> VllmServer:
    """One server per process and configuration: the generate and judge stages share it."""
    key = (python, model, tuple(args), tuple(sorted(env.items())))
    with _LOCK:
        server = _SHARED.get(key)
        if server is None or server.process is None or server.process.poll() is not None:
            server = _SHARED[key] = VllmServer(python, model, args, env, timeout_s).start()
        return server


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()
    _SHARED.clear()


atexit.register(stop_all)
