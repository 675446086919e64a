"""Secrets in llm.server_args / server_env: found, redacted, and the key the client sends."""

import dataclasses

from pipeline import config as config_mod
from pipeline.methods import natural
from transforms.languages import LANGUAGES
from transforms.models import generate, llm
from transforms.models.llm_handler import LlmHandler

ARGS = ("--max-model-len", "4096", "--api-key", "sk-one", "sk-two", "--hf-token=hf_abcdef",
        "--dtype", "float32", "--served-model-name", "tiny")


def test_secret_arguments_are_redacted_and_the_rest_kept():
    assert llm.redact_args(ARGS) == ["--max-model-len", "4096", "--api-key", "***", "***", "--hf-token=***",
                                     "--dtype", "float32", "--served-model-name", "tiny"]
    assert llm.redact_env({"HF_TOKEN": "hf_x", "VLLM_CPU_KVCACHE_SPACE": "1"}) == {
        "HF_TOKEN": "***", "VLLM_CPU_KVCACHE_SPACE": "1"}


def test_secret_values_are_scrubbed_from_any_text(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-from-env")
    found = llm.secrets(ARGS, {"VLLM_API_KEY": "sk-env", "OTHER": "visible", "SOME_KEY": "true"})
    assert {"sk-one", "sk-two", "hf_abcdef", "sk-env", "tok-from-env"} <= found
    assert not found & {"visible", "4096", "float32", "tiny", "true"}
    text = "non-default args: {'api_key': ['sk-one', 'sk-two']} hf_abcdef tok-from-env float32"
    assert llm.scrub(text, found) == "non-default args: {'api_key': ['***', '***']} *** *** float32"


def judge_step(cfg) -> generate.JudgeStep:
    return generate.JudgeStep(generate.JudgeConfig(), 0, cfg.model)


def test_the_client_sends_the_key_the_server_was_started_with(monkeypatch):
    assert llm.server_api_key(ARGS) == "sk-one"
    assert llm.server_api_key(("--api-key=sk-eq",)) == "sk-eq"
    assert llm.server_api_key((), {"VLLM_API_KEY": "sk-env"}) == "sk-env"
    assert llm.server_api_key(("--dtype", "float32")) is None
    cfg = config_mod.LlmConfig(server_args=("--dtype", "float32"))
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    assert LlmHandler(judge_step(cfg), cfg).load_model().api_key == "EMPTY"
    monkeypatch.setenv("VLLM_API_KEY", "sk-from-env")  # the self-started server's key: vLLM reads it too
    assert LlmHandler(judge_step(cfg), cfg).load_model().api_key == "sk-from-env"
    monkeypatch.setenv("LLM_API_KEY", "sk-endpoint")  # an endpoint's key comes from the environment
    with_endpoint = dataclasses.replace(cfg, endpoint="http://127.0.0.1:1/v1")
    assert LlmHandler(judge_step(with_endpoint), with_endpoint).load_model().api_key == "sk-endpoint"


def test_a_key_in_a_config_file_is_refused_naming_the_environment_variable(tmp_path):
    import pytest

    for text, key, variable in (("llm: {server_args: [--api-key, sk-file]}", "config.llm.server_args", "VLLM_API_KEY"),
                                ("llm: {server_args: [--api-key=sk-file]}", "config.llm.server_args", "VLLM_API_KEY"),
                                ("llm: {server_args: [--hf-token, hf_file]}", "config.llm.server_args", "HF_TOKEN"),
                                ("llm: {server_env: {VLLM_API_KEY: sk-file}}", "config.llm.server_env", "VLLM_API_KEY")):
        f = tmp_path / "c.yaml"
        f.write_text(text + "\n")
        with pytest.raises(config_mod.ConfigError) as failure:
            config_mod.load("demo", str(f))
        message = str(failure.value)
        assert message.startswith(f"{key}: ") and f"${variable}" in message and "file" not in message.split(":")[0]
        assert "sk-file" not in message and "hf_file" not in message


def test_user_server_args_add_to_the_presets(tmp_path):
    demo = config_mod.load("demo").llm.server_args
    f = tmp_path / "c.yaml"
    f.write_text("llm: {server_args: [--dtype, bfloat16, --seed, '7', --enable-chunked-prefill]}\n")
    args = list(config_mod.load("demo", str(f)).llm.server_args)
    # the preset's essentials stay; a flag given again replaces the preset's (its --no- form too)
    assert "--structured-outputs-config" in args and "--max-model-len" in args
    assert args[args.index("--max-model-len") + 1] == demo[demo.index("--max-model-len") + 1]
    assert args.count("--dtype") == 1 and args[args.index("--dtype") + 1] == "bfloat16"
    assert "--no-enable-chunked-prefill" not in args and "--enable-chunked-prefill" in args
    assert args[-5:] == ["--dtype", "bfloat16", "--seed", "7", "--enable-chunked-prefill"]
    assert llm.add_args(["--a", "1", "--b=2", "--c"], ["--b", "3", "--a=4"]) == ["--c", "--b", "3", "--a=4"]
    # a per-language override adds in the same way
    f.write_text("languages: {tel: {llm: {server_args: [--seed, '9']}}}\n")
    tel = config_mod.load("demo", str(f)).for_lang("tel").llm.server_args
    assert list(tel) == [*demo, "--seed", "9"]


def test_urls_lose_their_user_password_and_secret_query_values():
    assert llm.redact_url("http://user:pw@host:8000/v1?api_key=sk-1&model=m&sig=abc&token=t&flag") == (
        "http://***@host:8000/v1?api_key=***&model=m&sig=***&token=***&flag")
    assert llm.redact_url("https://host/v1") == "https://host/v1"
    assert llm.redact_url(None) is None
    found = llm.secrets(urls=["http://someone:pw-secret@host/v1?api_key=sk-query&model=visible", None])
    assert {"someone", "pw-secret", "sk-query"} <= found and "visible" not in found


def test_the_stats_config_holds_no_secret():
    args = ("--max-model-len", "4096", "--ssl-keyfile-password", "sk-one", "--served-model-name", "tiny")
    config = config_mod.load("demo")
    config = dataclasses.replace(config, llm=dataclasses.replace(
        config.llm, server_args=args, server_env={"HF_TOKEN": "hf_secret_env"},
        endpoint="http://user:pw-secret@127.0.0.1:1/v1?api_key=sk-url"))
    recorded = natural.run_config(config, LANGUAGES["tel"])
    assert not any(s in repr(recorded) for s in ("sk-one", "hf_secret_env", "pw-secret", "sk-url", "user"))
    assert recorded["llm"]["server_args"][:4] == ["--max-model-len", "4096", "--ssl-keyfile-password", "***"]
    assert recorded["llm"]["endpoint"] == "http://***@127.0.0.1:1/v1?api_key=***"


# Stands in for the vLLM environment's python (a real server takes a minute and more to start;
# tests/pipeline/test_llm_prompts.py checks the same against one): prints its arguments, as
# vLLM does, and answers /v1/models only with the Bearer key DEMAND.
FAKE_PYTHON = """#!{python}
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

print("args:", sys.argv, flush=True)

class Models(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer {demand}"
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{{"data": []}}')

port = int(sys.argv[sys.argv.index("--port") + 1])
HTTPServer(("127.0.0.1", port), Models).serve_forever()
"""


def fake_python(tmp_path, demand):
    import stat
    import sys

    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON.format(python=sys.executable, demand=demand))
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return str(python)


def test_the_readiness_check_sends_the_key(tmp_path):
    server = llm.VllmServer(fake_python(tmp_path, "sk-right"), "tiny", ("--api-key", "sk-right"), {}, 60.0)
    try:
        server.start()  # without the key the check would get 401 and fail
    finally:
        server.stop()


def test_a_server_refusing_the_key_fails_at_once_without_showing_it(tmp_path):
    import time

    import pytest

    server = llm.VllmServer(fake_python(tmp_path, "sk-other"), "tiny", ("--api-key", "sk-wrong-key"), {}, 600.0)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="refuses the readiness check") as failure:
        server.start()
    assert time.monotonic() - start < 60  # not the 600 s startup timeout
    assert server.process.poll() is not None  # stopped
    assert "sk-wrong-key" in open(server.log_path).read() and "sk-wrong-key" not in server.tail()
    assert "sk-wrong-key" not in str(failure.value)
