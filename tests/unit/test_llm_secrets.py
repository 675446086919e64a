"""Secrets in llm.server_args / server_env: found, redacted, and the key the client sends."""

import dataclasses

from pipeline import config as config_mod
from pipeline import graph
from pipeline.languages import LANGUAGES
from transforms import generate, llm

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


def test_the_client_sends_the_key_the_server_was_started_with(monkeypatch):
    assert llm.server_api_key(ARGS) == "sk-one"
    assert llm.server_api_key(("--api-key=sk-eq",)) == "sk-eq"
    assert llm.server_api_key((), {"VLLM_API_KEY": "sk-env"}) == "sk-env"
    assert llm.server_api_key(("--dtype", "float32")) is None
    cfg = config_mod.LlmConfig(server_args=ARGS)
    handler = generate.LlmHandler("judge", cfg, generate.GenerateConfig(), generate.JudgeConfig())
    assert handler.load_model().api_key == "sk-one"
    monkeypatch.setenv("LLM_API_KEY", "sk-endpoint")  # an endpoint's key comes from the environment
    with_endpoint = dataclasses.replace(cfg, endpoint="http://127.0.0.1:1/v1")
    assert generate.LlmHandler("judge", with_endpoint, generate.GenerateConfig(),
                               generate.JudgeConfig()).load_model().api_key == "sk-endpoint"
    assert generate.LlmHandler("judge", config_mod.LlmConfig(), generate.GenerateConfig(),
                               generate.JudgeConfig()).load_model().api_key == "EMPTY"


def test_the_stats_config_holds_no_secret():
    config = config_mod.load("demo")
    config = dataclasses.replace(config, llm=dataclasses.replace(
        config.llm, server_args=ARGS, server_env={"HF_TOKEN": "hf_secret_env"}))
    recorded = repr(graph.run_config(config, LANGUAGES["tel"]))
    assert not any(s in recorded for s in ("sk-one", "sk-two", "hf_abcdef", "hf_secret_env"))
    assert "'--api-key', '***', '***'" in recorded
