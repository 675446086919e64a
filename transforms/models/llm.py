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

A failed request's error says what failed: the exception, its cause (``ConnectError: [Errno
111] Connection refused``) and the URL, without credentials (``describe``). A request in flight
for longer than ``slow_s`` logs a warning (at most one line per ``slow_s``), so a server that
accepts and never answers is not minutes of silence.

Secrets: the key of a server the pipeline starts comes from the environment (``VLLM_API_KEY``,
which vLLM reads itself), never from config (``llm.server_args`` refuses ``--api-key``); the
client and the readiness check send it (``server_api_key``). Values of secret arguments and of
secret-named environment variables never reach a log line, an error message, the stats or the
report: ``redact_args`` and ``scrub`` replace them with ``***``; ``redact_url`` does the same
for a URL's user, password and secret-looking query values.
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
import urllib.parse
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


_SECRET_QUERY = re.compile(r"token|key|secret|passw|pwd|credential|auth|sig|session", re.IGNORECASE)
# flags that would put a secret into a config file: the environment variable to use instead
CONFIG_SECRET_FLAGS = {"--api-key": "VLLM_API_KEY", "--hf-token": "HF_TOKEN"}
SLOW_REQUEST_S = 60.0  # a request in flight this long logs a warning


def _is_secret_flag(arg: str) -> bool:
    return arg.startswith("--") and bool(_SECRET_NAME.search(arg.split("=", 1)[0]))


def redact_url(url: str | None) -> str | None:
    """``url`` with its user and password, and the values of secret-looking query parameters
    (``api_key``, ``token``, ``sig``, ...), replaced by ``***``; what cannot parse as a URL is
    returned as ``***`` whole when it may hold either."""
    if not url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return REDACTED
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    query = "&".join(
        f"{k}={REDACTED}" if _SECRET_QUERY.search(k) else (f"{k}={v}" if sep else k)
        for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def recorded(section: dict) -> dict:
    """The ``llm`` config section (as plain data) as the stats record it: no ``server_env``,
    secret arguments and the endpoint's credentials as ``***``."""
    out = {k: v for k, v in section.items() if k != "server_env"}
    out["server_args"] = redact_args(section.get("server_args", ()))
    if out.get("endpoint"):
        out["endpoint"] = redact_url(out["endpoint"])
    return out


def _flag_name(arg: str) -> str:
    """A flag's name, the same for its negation (``--no-enable-x`` and ``--enable-x``)."""
    name = arg.split("=", 1)[0]
    return "--" + name[len("--no-"):] if name.startswith("--no-") else name


def _groups(args: Sequence[str]) -> list[tuple[str | None, list[str]]]:
    """``args`` as (flag name, [flag, its values]) groups; leading values under None."""
    groups: list[tuple[str | None, list[str]]] = []
    for arg in args:
        if arg.startswith("--") or not groups:
            groups.append((_flag_name(arg) if arg.startswith("--") else None, [arg]))
        else:
            groups[-1][1].append(arg)
    return groups


def add_args(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """Server arguments ``extra`` (the user's ``llm.server_args``) added to ``base`` (the
    preset's): a flag in ``extra`` replaces the same flag (or its ``--no-`` form) in ``base``
    with its values; every other flag of ``base`` is kept."""
    given = {name for name, _ in _groups(extra) if name}
    kept = [arg for name, group in _groups(base) if name not in given for arg in group]
    return [*kept, *extra]


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


def secrets(args: Sequence[str] = (), env: dict | None = None, urls: Sequence[str | None] = ()) -> set[str]:
    """The secret values in ``args``, ``env``, this process's environment and ``urls`` (a
    URL's user, password and secret-looking query values)."""
    found = {a for a, r in zip(args, redact_args(args)) if r == REDACTED}
    for url in filter(None, urls):
        parts = urllib.parse.urlsplit(url)
        found |= {urllib.parse.unquote(v) for v in (parts.username, parts.password) if v}
        found |= {v for k, v in urllib.parse.parse_qsl(parts.query) if _SECRET_QUERY.search(k)}
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
    ``--api-key=K`` or ``VLLM_API_KEY``), or None. ``env``: the server's whole environment
    (the pipeline's config refuses ``--api-key``: the key is ``$VLLM_API_KEY``)."""
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


def describe(e: BaseException) -> str:
    """A failed request as one line: the exception, its causes (the connection error under
    openai's ``Connection error.``) and the request's URL without credentials."""
    text = f"{type(e).__name__}: {' '.join(str(e).split())}"
    seen, cause = {str(e)}, e.__cause__ or e.__context__
    if getattr(e, "status_code", None) is not None:
        cause = None  # the server's answer says it all (httpx's cause repeats it, with a help link)
    while cause is not None and len(seen) < 4:
        message = " ".join(str(cause).split())
        if message and message not in seen:
            text += f" <- {type(cause).__name__}: {message}"
            seen.add(message)
        cause = cause.__cause__ or cause.__context__
    request = getattr(e, "request", None)
    url = getattr(request, "url", None)
    text = _URL.sub(lambda m: redact_url(m.group()), text)  # a URL in a message, as in httpx's
    if url is not None:
        text += f" ({getattr(request, 'method', 'POST')} {redact_url(str(url))})"
    return text[:400]


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


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
        slow_s: float = SLOW_REQUEST_S,
    ):
        # every request is sent at least once, and a batch can make progress (llm config checks the same)
        if concurrency < 1 or retries < 0 or timeout_s <= 0:
            raise ValueError(f"LlmClient needs concurrency >= 1, retries >= 0 and timeout_s > 0, got "
                             f"{concurrency}, {retries}, {timeout_s}")
        self.base_url, self.model, self.api_key = base_url, model, api_key
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.retries, self.backoff_s, self.slow_s = retries, backoff_s, slow_s

    def complete(self, requests: Sequence[LlmRequest]) -> list[LlmResult]:
        """Results in request order. Runs the coroutine on a fresh event loop (a Beam DoFn
        has none); call ``complete_async`` from async code."""
        return asyncio.run(self.complete_async(requests))

    async def complete_async(self, requests: Sequence[LlmRequest]) -> list[LlmResult]:
        from openai import AsyncOpenAI

        gate = asyncio.Semaphore(self.concurrency)
        in_flight: dict[int, tuple[float, int]] = {}  # request index -> (sent at, attempt)
        watch = asyncio.ensure_future(self._watch(in_flight))
        try:
            async with AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
            ) as client:
                return list(await asyncio.gather(
                    *(self._one(client, gate, r, i, in_flight) for i, r in enumerate(requests))))
        finally:
            watch.cancel()

    async def _watch(self, in_flight: dict[int, tuple[float, int]]) -> None:
        """Warn, at most once per ``slow_s``, while requests have been in flight longer than it."""
        while True:
            await asyncio.sleep(self.slow_s / 4)
            now = time.monotonic()
            slow = [(now - sent, attempt) for sent, attempt in in_flight.values() if now - sent >= self.slow_s]
            if slow:
                oldest, attempt = max(slow)
                logger.warning(
                    "LLM server %s: %d of %d requests in flight for over %g s without an answer (the oldest "
                    "%.1f s, attempt %d of %d; each gives up after llm.timeout_s %g s)",
                    redact_url(self.base_url), len(slow), len(in_flight), self.slow_s, oldest, attempt,
                    self.retries + 1, self.timeout_s)
                await asyncio.sleep(self.slow_s * 3 / 4)

    async def _one(self, client, gate: asyncio.Semaphore, request: LlmRequest, index: int = 0,
                   in_flight: dict | None = None) -> LlmResult:
        extra = None
        if request.schema:
            extra = {"structured_outputs": {"json": request.schema}}
        elif request.regex:
            extra = {"structured_outputs": {"regex": request.regex}}
        in_flight = {} if in_flight is None else in_flight
        error = "no request was sent"
        for attempt in range(1, self.retries + 2):
            try:
                async with gate:
                    in_flight[index] = (time.monotonic(), attempt)
                    try:
                        response = await client.chat.completions.create(
                            model=self.model,
                            messages=list(request.messages),
                            max_tokens=request.max_tokens,
                            temperature=request.temperature,
                            top_p=request.top_p,
                            seed=request.seed,
                            extra_body=extra,
                        )
                    finally:
                        in_flight.pop(index, None)
                usage = response.usage.model_dump() if response.usage else {}
                choice = response.choices[0]
                return LlmResult(choice.message.content, None, attempt, usage, choice.finish_reason)
            except Exception as e:  # noqa: BLE001 - failures are retried, then reported
                error = describe(e)
                if getattr(e, "status_code", None) in _FINAL:
                    return LlmResult(None, error, attempt)
                if attempt <= self.retries:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
        return LlmResult(None, error, self.retries + 1)


def is_local_model(model: str) -> bool:
    """Whether a config's model names a file (a local directory, a staged copy on a bucket, a
    ``tiny:`` stand-in) rather than a hub id: no name an external endpoint serves it under."""
    return (model.startswith(("tiny:", "/", "./", "../", "~")) or "://" in model
            or os.path.exists(os.path.expanduser(model)))


def endpoint_model(endpoint: str, model: str, api_key: str = "EMPTY", timeout_s: float = 30.0) -> str:
    """The model name to send to an external ``endpoint`` for config ``llm.model``: a hub id
    as it is (vLLM serves a hub model under its id); for a local path, a staged copy or a
    ``tiny:`` stand-in, the one model the endpoint serves (its ``/v1/models``). An endpoint
    serving several, or none, or not answering, is an error that says to set ``llm.model``."""
    if not is_local_model(model):
        return model
    import httpx  # the openai client's: a user and password in the URL are sent as basic auth

    parts = urllib.parse.urlsplit(endpoint)
    url = urllib.parse.urlunsplit((*parts[:2], parts.path.rstrip("/") + "/models", parts.query, ""))
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)
        response.raise_for_status()
        served = [m["id"] for m in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise RuntimeError(f"llm.model {model!r} is a local model, and {redact_url(url)} does not say which "
                           f"model it serves ({describe(e)}): set llm.model to the name the endpoint serves "
                           "it under") from None
    if len(served) != 1:
        raise RuntimeError(f"llm.model {model!r} is a local model, and {redact_url(endpoint)} serves "
                           f"{', '.join(served) or 'no model'}: set llm.model to the one to use")
    return served[0]


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
                 startup_timeout_s: float = 900.0, log_dir: str | None = None):
        """``log_dir``: a local directory for the server's log (the run's ``OUT/logs``); None:
        the temporary directory."""
        self.python, self.model, self.args = python, model, tuple(args)
        self.env, self.startup_timeout_s = env or {}, startup_timeout_s
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.headers: dict[str, str] = {}
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        fd, self.log_path = tempfile.mkstemp(prefix="vllm-", suffix=".log", dir=log_dir or None)
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
        key = server_api_key(self.args, env)  # vLLM reads $VLLM_API_KEY itself
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        ready = urllib.request.Request(f"{self.base_url}/models", headers=self.headers)
        with open(self.log_path, "ab") as log:  # appending: others may add lines to the log
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            preexec_fn=_die_with_parent)
        _RUNNING.add(self)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.process.returncode} while starting; its last "
                                   f"error: {self.last_error()} (log: {self.log_path})")
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
        raise RuntimeError(f"vLLM server not healthy after {self.startup_timeout_s:.0f} s; its last error: "
                           f"{self.last_error()} (log: {self.log_path})")

    def healthy(self, timeout_s: float = 10.0) -> bool:
        """Whether the process runs and its ``/health`` answers 200 within ``timeout_s`` (vLLM
        answers 503 once its engine died; a wedged one does not answer)."""
        if self.process is None or self.process.poll() is not None:
            return False
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/health", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def last_error(self) -> str:
        """The server's own last error line in its log (vLLM logs ``ERROR ...`` and the
        exception's last line), or the log's last line; secrets scrubbed."""
        lines = [line.strip() for line in self.tail(20000).splitlines() if line.strip()]
        marked = [line for line in lines if re.search(r"\bERROR\b|Error\b|Exception\b|error:", line)]
        return ((marked or lines or ["(empty log)"])[-1])[:300]

    def tail(self, chars: int = 1500) -> str:
        """The end of the server's log (for error messages), secrets scrubbed: vLLM logs its
        arguments."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return scrub(f.read()[-chars - 1000:], secrets(self.args, self.env))[-chars:]

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

    def _crashed(self, server: VllmServer, what: str) -> None:
        """Count a crash of ``server`` (dead, or wedged and killed): a warning naming its last
        error, or past ``MAX_CRASHES`` the error that fails the run."""
        self.crashes += 1
        why = f"its last error: {server.last_error()} (log: {server.log_path})"
        if self.crashes > MAX_CRASHES:
            raise RuntimeError(f"vLLM server {what} {self.crashes} times, more than the {MAX_CRASHES} restarts "
                               f"a run allows; {why}")
        logger.warning("vLLM server %s (restart %d of %d); %s", what, self.crashes, MAX_CRASHES, why)
        server.stop()

    def log_path(self) -> str | None:
        """The log of the server now running (or last run)."""
        return self.server.log_path if self.server is not None else None

    def recover(self, client_pid: int) -> str | None:
        """After requests failed to reach the server: a server that died, or whose ``/health``
        does not answer 200 (a wedged engine, killed here), is restarted and its new base URL
        returned; None when it is healthy (the errors were the requests' own)."""
        with self.lock:
            server = self.server
            if server is None or server not in _RUNNING:
                return None
            if server.process.poll() is not None:
                self._crashed(server, f"died (exit {server.process.returncode})")
            elif not server.healthy():
                self._crashed(server, "stopped answering its health check")
            else:
                return None
            self.server = None
        return self.base_url(client_pid)

    def base_url(self, client_pid: int) -> str:
        with self.lock:  # a second process asking during start-up waits for health here
            server = self.server
            if server is not None and server.process is not None and server.process.poll() is not None:
                if server in _RUNNING:  # died by itself, not stopped by stop_all
                    self._crashed(server, f"died (exit {server.process.returncode})")
                server = None
            if server is None:
                self.server = server = VllmServer(*self.spec).start()
                self.clients = set()
            if client_pid not in self.clients:  # in the server's log: who shared it
                self.clients.add(client_pid)
                with open(server.log_path, "a", encoding="utf-8") as log:
                    log.write(f"[natural-instruct] client process {client_pid}\n")
            return server.base_url


def server_url(python: str, model: str, args: Sequence[str], env: dict, timeout_s: float,
               log_dir: str | None = None) -> str:
    """The base URL of this machine's vLLM server for this configuration, started on first
    use. Generate and judge, and every worker process on the machine, share it."""
    return server_host(python, model, args, env, timeout_s, log_dir).base_url(os.getpid())


def server_host(python: str, model: str, args: Sequence[str], env: dict, timeout_s: float,
                log_dir: str | None = None):
    """This machine's ``_ServerHost`` (a proxy to it) for this configuration."""
    from apache_beam.utils.multi_process_shared import MultiProcessShared

    spec = (python, model, tuple(args), dict(env), timeout_s, log_dir)
    key = json.dumps([python, model, list(args), sorted(env.items()), log_dir])
    tag = "natural-instruct-vllm-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    with _LOCK:
        if tag not in _HANDLES:
            shared = MultiProcessShared(lambda: _ServerHost(tag, spec), tag=tag, always_proxy=True)
            _HANDLES[tag] = shared.acquire()
        return _HANDLES[tag]


# errors after which the self-started server's health is checked (it may have died or wedged)
UNREACHABLE = ("APIConnectionError", "APITimeoutError", "InternalServerError")


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
