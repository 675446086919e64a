"""One async client for an OpenAI-compatible server, and the vLLM server it may start.

``LlmClient.complete`` sends a whole batch concurrently (the server batches continuously),
bounded by ``concurrency``, each request with a timeout and retries with exponential backoff.
A request that still fails becomes an ``LlmResult`` with an ``error``: a counted reject for
the stage, never a crash and never silence.

``VllmServer`` starts ``python -m vllm.entrypoints.openai.api_server`` from the Python of a
separate environment (vLLM needs transformers >= 5; this one has < 5), waits until
``/v1/models`` answers, and stops it with the process that started it (``stop_all``, atexit,
and the parent-death signal on Linux), so no server outlives a run. ``server_url`` gives
every worker process of a machine the same server (started by the first to ask).

Secrets: a server started with ``--api-key`` (or ``VLLM_API_KEY`` in its environment) is
asked with that key, its readiness check included (``server_api_key``). Values of secret
arguments (``--api-key``, ``--hf-token``, any ``*token*``/``*key*``/``*secret*``/``*password*``
flag) and of secret-named environment variables never reach a log line, an error message,
the stats or the report: ``redact_args`` and ``scrub`` replace them with ``***``.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import hashlib
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)
# one line per HTTP request otherwise, in every worker process (Beam's workers log at INFO)
logging.getLogger("httpx").setLevel(logging.WARNING)

LLM_ERROR = "llm_error"
# HTTP statuses no retry can fix: a bad request (e.g. a prompt over the context length),
# authentication, a missing model.
_FINAL = {400, 401, 403, 404, 422}
REDACTED = "***"
_SECRET_NAME = re.compile(r"token|key|secret|passw|credential|auth", re.IGNORECASE)


def _is_secret_flag(arg: str) -> bool:
    return arg.startswith("--") and bool(_SECRET_NAME.search(arg.split("=", 1)[0]))


def redact_args(args: Sequence[str]) -> list[str]:
    """``args`` with the values of every secret flag (``--api-key K1 K2``, ``--hf-token=T``)
    replaced by ``***``."""
    out, hiding = [], False
    for arg in args:
        if arg.startswith("--"):
            hiding = _is_secret_flag(arg) and "=" not in arg
            out.append(arg.split("=", 1)[0] + "=" + REDACTED if _is_secret_flag(arg) and "=" in arg else arg)
        else:
            out.append(REDACTED if hiding else arg)
    return out


def redact_env(env: dict) -> dict:
    """``env`` with the value of every secret-named variable replaced by ``***``."""
    return {k: REDACTED if _SECRET_NAME.search(k) else v for k, v in env.items()}


def secrets(args: Sequence[str] = (), env: dict | None = None) -> set[str]:
    """The secret values in ``args``, ``env`` and this process's environment."""
    found = {a for a, r in zip(args, redact_args(args)) if r == REDACTED}
    found |= {a.split("=", 1)[1] for a in args if _is_secret_flag(a) and "=" in a}
    for variables in (env or {}, os.environ):
        found |= {v for k, v in variables.items() if _SECRET_NAME.search(k)}
    # "", "0" or "true" would blank out unrelated text
    return {v for v in found if len(v) >= 4 and v.lower() not in {"true", "false", "none", "null"}}


def scrub(text: str, values: set[str]) -> str:
    """``text`` with every secret value in ``values`` replaced by ``***``."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def server_api_key(args: Sequence[str], env: dict | None = None) -> str | None:
    """The key a vLLM server started with ``args`` and ``env`` demands (``--api-key K``,
    ``--api-key=K`` or ``VLLM_API_KEY``), or None."""
    for i, arg in enumerate(args):
        if arg == "--api-key" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--api-key="):
            return arg.split("=", 1)[1]
    return (env or {}).get("VLLM_API_KEY") or None


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
    finish_reason: str | None = None  # "stop", or "length" where max_tokens cut the answer


class LlmClient:
    def __init__(
        self,
        base_url: str | None,  # None until set (a server started on demand)
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
                choice = response.choices[0]
                return LlmResult(choice.message.content, None, attempt, usage, choice.finish_reason)
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
        fd, self.log_path = tempfile.mkstemp(prefix="vllm-", suffix=".log")
        os.close(fd)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> VllmServer:
        if not os.path.exists(self.python):
            raise RuntimeError(
                f"vLLM server Python {self.python} not found: build it with `make vllm-env` "
                "or set llm.endpoint / --llm-endpoint to an existing server"
            )
        head = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--host", "127.0.0.1", "--port", str(self.port)]
        cmd = [*head, *self.args]
        logger.info("starting vLLM: %s (log %s)", " ".join(head + redact_args(self.args)), self.log_path)
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"), **self.env}
        key = server_api_key(self.args, self.env)
        ready = urllib.request.Request(f"{self.base_url}/models",
                                       headers={"Authorization": f"Bearer {key}"} if key else {})
        with open(self.log_path, "ab") as log:  # appending: others may add lines to the log
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            preexec_fn=_die_with_parent)
        _RUNNING.add(self)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(ready, timeout=5) as r:
                    if r.status == 200:
                        logger.info("vLLM ready on port %d", self.port)
                        return self
            except urllib.error.HTTPError as e:
                if e.code in (401, 403):  # up, but refuses our key: no use waiting
                    self.stop()
                    raise RuntimeError(f"vLLM server refuses the readiness check (HTTP {e.code}): "
                                       "its --api-key / VLLM_API_KEY is not the key the client sends") from None
            except OSError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"vLLM server not healthy after {self.startup_timeout_s:.0f} s: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        """The end of the server's log (for error messages), secrets scrubbed: vLLM logs its
        arguments."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return scrub(f.read(), secrets(self.args, self.env))[-chars:]

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
_LOCK = threading.Lock()
_HANDLES: dict[str, object] = {}  # tag -> proxy of the machine's _ServerHost, per process
_HOSTED: set[str] = set()  # tags whose _ServerHost lives in this process
MAX_CRASHES = 2  # restarts of a server that died by itself, before a run gives up


class _ServerHost:
    """The one vLLM server of a machine and configuration. It lives in the first process that
    asks for it (Beam's ``MultiProcessShared``); every other process on the machine reaches it
    through a proxy, so N worker processes share one server (and one GPU's memory). It starts
    the server on first use, and again if the server died, up to ``MAX_CRASHES`` times."""

    def __init__(self, tag: str, spec: tuple):
        self.tag, self.spec = tag, spec
        self.server: VllmServer | None = None
        self.crashes = 0
        self.clients: set[int] = set()
        self.lock = threading.Lock()
        _HOSTED.add(tag)

    def base_url(self, client_pid: int) -> str:
        with self.lock:  # a second process asking during start-up waits for health here
            server = self.server
            if server is not None and server.process is not None and server.process.poll() is not None:
                if server in _RUNNING:  # died by itself, not stopped by stop_all
                    self.crashes += 1
                    if self.crashes > MAX_CRASHES:
                        raise RuntimeError(f"vLLM server died {self.crashes} times: {server.tail()}")
                    logger.warning("vLLM server died (exit %s); restarting", server.process.returncode)
                    server.stop()
                server = None
            if server is None:
                self.server = server = VllmServer(*self.spec).start()
                self.clients = set()
            if client_pid not in self.clients:  # in the server's log: who shared it
                self.clients.add(client_pid)
                with open(server.log_path, "a", encoding="utf-8") as log:
                    log.write(f"[natural-instruct] client process {client_pid}\n")
            return server.base_url


def server_url(python: str, model: str, args: Sequence[str], env: dict, timeout_s: float) -> str:
    """The base URL of this machine's vLLM server for this configuration, started on first
    use. Generate and judge, and every worker process on the machine, share it."""
    from apache_beam.utils.multi_process_shared import MultiProcessShared

    spec = (python, model, tuple(args), dict(env), timeout_s)
    key = json.dumps([python, model, list(args), sorted(env.items())])
    tag = "natural-instruct-vllm-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    with _LOCK:
        if tag not in _HANDLES:
            shared = MultiProcessShared(lambda: _ServerHost(tag, spec), tag=tag, always_proxy=True)
            _HANDLES[tag] = shared.acquire()
        handle = _HANDLES[tag]
    return handle.base_url(os.getpid())


def stop_all() -> None:
    """Stop the servers this process started, and retire the machine-wide handles it hosts
    (a later run on this machine starts afresh instead of finding a stale address)."""
    for server in list(_RUNNING):
        server.stop()
    from apache_beam.utils import multi_process_shared

    for tag in list(_HOSTED):
        address = os.path.join(tempfile.gettempdir(), f"{tag}.address")
        if os.path.exists(address):
            os.remove(address)
        # Beam's registry of this process's singletons would refuse the tag when a later run
        # in this process (tests, --calibrate then a run) hosts a server for it again
        multi_process_shared._process_level_singleton_manager.entries.pop(tag, None)
    _HOSTED.clear()
    _HANDLES.clear()


atexit.register(stop_all)
