"""The LLM stages' engine: a Beam ModelHandler over the one async client (``llm.py``), the
machine's vLLM server or an endpoint, and the model-call cache. What a stage asks and how it
reads the answers is its ``step`` (``generate.GenerateStep``, ``generate.JudgeStep``); the evol
method's ``EvolHandler`` advances conversations a round of calls at a time. Importing this
module imports Beam's RunInference and torch: stage modules import it when they build their graph.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from apache_beam.ml.inference.base import ModelHandler

from transforms.models import evol, llm, model_store
from transforms.models.config import EvolConfig, LlmConfig, project_path
from transforms.records.cache import CallCache
from transforms.records.shapes import with_provenance


class LlmHandler(ModelHandler[dict, tuple[dict, str | None], llm.LlmClient]):
    """Records -> (record + the step's fields, None) or (record, reason[, detail]). ``step``
    builds a batch's requests (``step.requests(batch) -> (requests, a plan per record)``) and
    reads each answer (``step.parse(record, plan, text)``); ``step.name`` names the call cache's
    and the metrics' namespace. ``load_model`` connects to ``llm.endpoint`` or to the machine's
    vLLM server from ``llm.server_python`` (started by the first process that asks)."""

    def __init__(self, step, llm_cfg: LlmConfig, cache_dir: str | None = None):
        # full batches: a batch waits for its slowest request (a timeout, at worst), and Beam's
        # adaptive sizes (from 1, doubling) kept most batches far under the concurrency
        n = llm_cfg.records_per_batch
        super().__init__(min_batch_size=n, max_batch_size=n)
        self.step, self.llm_cfg = step, llm_cfg
        # the server's log beside the run's outputs (OUT/logs; the cache is OUT/cache), when local
        self.log_dir = (os.path.join(os.path.dirname(cache_dir), "logs")
                        if cache_dir and "://" not in cache_dir else None)
        self.server_log: str | None = None  # the log of the server that answered last
        # the model and every request field (prompt, sampling, seed) make the key
        self.cache = CallCache(cache_dir, step.name, {"model": llm_cfg.model, "server_args": llm_cfg.server_args})

    def load_model(self) -> llm.LlmClient:
        cfg = self.llm_cfg
        # without an endpoint, the server starts when a batch first needs it (not when the
        # cache answers every request), and wants the key it was started with: $VLLM_API_KEY.
        # An endpoint is asked which model it serves, when needed, at the first call too.
        if cfg.endpoint:
            api_key, model = os.environ.get(cfg.api_key_env, "EMPTY"), None
        else:
            api_key = llm.server_api_key(cfg.server_args, {**os.environ, **cfg.server_env}) or "EMPTY"
            model = model_store.resolve(cfg.model)
        return llm.LlmClient(cfg.endpoint, model, api_key, cfg.concurrency, cfg.timeout_s, cfg.retries,
                             cfg.backoff_s)

    def _host(self):
        cfg = self.llm_cfg
        return llm.server_host(project_path(cfg.server_python), model_store.resolve(cfg.model),
                               cfg.server_args, cfg.server_env, cfg.startup_timeout_s, self.log_dir)

    def answers(self, model: llm.LlmClient, requests: Sequence[llm.LlmRequest]) -> list[dict]:
        """Each request's answer as ``{text, error, attempts, finish_reason}``: from the call
        cache, or from the server (started, or restarted if it died, when the cache lacks some).
        When requests to the machine's server fail to reach it, its health is checked: a dead or
        wedged server is restarted (``_ServerHost.recover``; past its restarts the run fails with
        the server's last error) and the failed requests are sent to the new one."""
        def call(missing: list[llm.LlmRequest]) -> list[dict]:
            if self.llm_cfg.endpoint:
                if model.model is None:
                    model.model = llm.endpoint_model(self.llm_cfg.endpoint, self.llm_cfg.model, model.api_key)
                return [_plain(answer) for answer in model.complete(missing)]
            host, pid = self._host(), os.getpid()
            model.base_url = host.base_url(pid)  # the machine's server: started, or restarted if it died
            results = model.complete(missing)
            if any(r.error and r.error.startswith(llm.UNREACHABLE) for r in results):
                url = host.recover(pid)
                if url is not None:
                    model.base_url = url
                    failed = [i for i, r in enumerate(results) if r.error]
                    for i, again in zip(failed, model.complete([missing[i] for i in failed]), strict=True):
                        results[i] = again
            self.server_log = host.log_path()
            return [_plain(answer) for answer in results]

        return self.cache.run(requests, call, keep=lambda answer: answer["error"] is None)

    def error_detail(self, answer: dict, **more) -> dict:
        """An ``llm_error`` reject's detail: the error, the attempts, the server's log if ours."""
        detail = {"error": answer["error"], "attempts": answer["attempts"], **more}
        if self.server_log and not self.llm_cfg.endpoint:
            detail["server_log"] = self.server_log
        return detail

    def run_inference(self, batch: Sequence[dict], model: llm.LlmClient, inference_args=None) -> Iterable:
        requests, plans = self.step.requests(batch)
        answers = self.answers(model, requests)
        return [
            (record, llm.LLM_ERROR, self.error_detail(answer)) if answer["error"]
            else self.step.parse(record, plan, answer["text"])
            for record, plan, answer in zip(batch, plans, answers, strict=True)
        ]

    def get_metrics_namespace(self) -> str:
        return self.step.name


def _plain(answer: llm.LlmResult) -> dict:
    return {"text": answer.text, "error": answer.error, "attempts": answer.attempts,
            "finish_reason": answer.finish_reason}


class EvolSteps:
    """An evol LLM stage's steps (``evol.next_step``: evolve, user, assistant, judge), as the
    ``step`` of an ``EvolHandler``."""

    def __init__(self, name: str, steps: tuple[str, ...]):
        self.name, self.steps = name, steps


class EvolHandler(LlmHandler):
    """Conversations -> (conversation with the stage's steps done, None) or (conversation,
    reason, detail): the first rejected answer drops the conversation. A batch's conversations
    advance together, one round of concurrent calls per step, so a conversation's next turn is
    asked once the one before it is in."""

    def __init__(self, stage: str, steps: tuple[str, ...], llm_cfg: LlmConfig, cfgs: dict[str, EvolConfig],
                 cache_dir: str | None = None):
        super().__init__(EvolSteps(stage, steps), llm_cfg, cache_dir)
        self.cfgs = cfgs

    def run_inference(self, batch: Sequence[dict], model: llm.LlmClient, inference_args=None) -> Iterable:
        states = list(batch)
        outcome: list[tuple | None] = [None] * len(states)
        while True:
            pending = []
            for i, state in enumerate(states):
                if outcome[i] is None:
                    step, request = evol.next_request(state, self.cfgs[state["lang"]])
                    if step in self.step.steps:
                        pending.append((i, step, request))
            if not pending:
                break
            answers = self.answers(model, [request for _, _, request in pending])
            for (i, step, _), answer in zip(pending, answers, strict=True):
                if answer["error"]:
                    outcome[i] = (states[i], llm.LLM_ERROR, self.error_detail(answer, step=step))
                    continue
                state, reason, detail = evol.apply_answer(states[i], step, answer["text"],
                                                          answer.get("finish_reason"), self.cfgs[states[i]["lang"]])
                if reason:
                    outcome[i] = (states[i], reason, detail)
                else:
                    states[i] = state
        return [out or (with_provenance(state, self.step.name, self.llm_cfg.model), None)
                for state, out in zip(states, outcome, strict=True)]
