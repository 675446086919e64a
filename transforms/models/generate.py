"""The LLM stages: generate (an English instruction I_en for each R_en) and judge (a 5-point
additive rating of the pair). Pure functions build requests and parse answers; ``LlmHandler``
runs a batch through the one async client; ``LlmStage`` is the Beam shell.

Prompts put the task or rubric in a system message and the data, neutralised, between
delimiters in the user message (``prompts.Prompt.messages``). Every answer is validated even
under structured outputs: an unparseable answer, an MCQ
without four options and an answer letter, an empty instruction, one that copies the
response, or a judge output without a final ``Score: N`` is a counted reject.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

import prompts
from pipeline.config import GenerateConfig, JudgeConfig, LlmConfig, project_path
from transforms.models import llm, model_store
from transforms.models.qe import below_threshold
from transforms.records.cache import CallCache
from transforms.records.shapes import route, with_provenance

LLM_UNPARSEABLE = "llm_unparseable"
INSTRUCTION_EMPTY = "instruction_empty"
INSTRUCTION_TOO_LONG = "instruction_too_long"
INSTRUCTION_COPIES_RESPONSE = "instruction_copies_response"
MCQ_INVALID = "mcq_invalid"
JUDGE_UNPARSEABLE = "judge_unparseable"
JUDGE_LOW = "judge_low"

_SCORE = re.compile(r"Score:\s*\**\s*([0-5])\s*\**\s*\W*\Z")
_WORD = re.compile(r"\w+")
JUDGE_REGEX = r"[^\n]{0,300}\nScore: [0-5]"  # a one-paragraph justification, then the score


def record_seed(record_id: str, salt: int) -> int:
    """A per-record sampling seed: the same record gets the same output on every run."""
    return int.from_bytes(hashlib.sha1(f"{salt}/{record_id}".encode()).digest()[:4], "big")


def draw_task(record_id: str, tasks: dict[str, float], seed: int) -> str:
    """The task prompt of a record, drawn by weight, reproducibly from its id."""
    names = sorted(tasks)
    return random.Random(f"{seed}/{record_id}").choices(names, [tasks[n] for n in names])[0]


def generate_request(record: dict, prompt: prompts.Prompt, cfg: GenerateConfig) -> llm.LlmRequest:
    schema = _bounded(prompt.schema, cfg.max_instruction_chars)
    return llm.LlmRequest(
        messages=prompt.messages(response=record["response_en"]),
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        seed=record_seed(record["id"], cfg.seed),
        schema=schema,
    )


def _bounded(schema: dict, max_chars: int) -> dict:
    """A copy of ``schema`` whose free-text strings are at most ``max_chars`` long, so a
    constrained answer always closes before the token limit."""
    if schema.get("type") == "string" and "enum" not in schema:
        return {**schema, "maxLength": min(schema.get("maxLength", max_chars), max_chars)}
    if schema.get("type") == "object":
        return {**schema, "properties": {k: _bounded(v, max_chars) for k, v in schema["properties"].items()}}
    return schema


def _ngrams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copies_response(instruction: str, response: str, max_ratio: float) -> bool:
    """Whether the instruction repeats more than ``max_ratio`` of the response's word 8-grams
    (or contains the whole response, for responses shorter than 8 words)."""
    grams = _ngrams(response)
    if not grams:
        return response.casefold().strip() in instruction.casefold()
    return len(grams & _ngrams(instruction)) / len(grams) > max_ratio


def parse_instruction(text: str | None, prompt: prompts.Prompt, response: str,
                      cfg: GenerateConfig) -> tuple[str | None, str | None, dict]:
    """(instruction, None, task detail) or (None, reason, {})."""
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError:
        return None, LLM_UNPARSEABLE, {}
    if not isinstance(data, dict):
        return None, LLM_UNPARSEABLE, {}
    detail: dict = {}
    if prompt.id == "mcq":
        options, answer = data.get("options"), data.get("answer")
        question = str(data.get("question", "")).strip()
        if (not isinstance(options, dict) or sorted(options) != ["A", "B", "C", "D"]
                or not all(str(v).strip() for v in options.values()) or answer not in options or not question):
            return None, MCQ_INVALID, {}
        instruction = question + "\n" + "\n".join(f"{k}. {str(options[k]).strip()}" for k in "ABCD")
        detail = {"answer": answer}
    else:
        instruction = str(data.get("instruction", "")).strip()
    if not instruction:
        return None, INSTRUCTION_EMPTY, {}
    if len(instruction) > cfg.max_instruction_chars:
        return None, INSTRUCTION_TOO_LONG, {}
    if copies_response(instruction, response, cfg.max_copy_ratio):
        return None, INSTRUCTION_COPIES_RESPONSE, {}
    return instruction, None, detail


def judge_request(record: dict, prompt: prompts.Prompt, cfg: JudgeConfig, seed: int) -> llm.LlmRequest:
    return llm.LlmRequest(
        messages=prompt.messages(instruction=record["instruction_en"], response=record["response_en"]),
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        seed=record_seed(record["id"], seed),
        schema=None,
    )


def parse_score(text: str | None) -> int | None:
    """The rating at the very end of the judge's output (``Score: N``); a "Score: 5" quoted
    earlier, e.g. from the response, does not count."""
    m = _SCORE.search((text or "").strip())
    return int(m.group(1)) if m else None


class LlmHandler(ModelHandler[dict, tuple[dict, str | None], llm.LlmClient]):
    """Records -> (record + the stage's fields, None) or (record, reason), for ``kind``
    generate or judge. ``load_model`` connects to ``llm.endpoint`` or to the machine's vLLM
    server from ``llm.server_python`` (started by the first process that asks)."""

    def __init__(self, kind: str, llm_cfg: LlmConfig, generate: GenerateConfig, judge: JudgeConfig,
                 cache_dir: str | None = None):
        # full batches: a batch waits for its slowest request (a timeout, at worst), and Beam's
        # adaptive sizes (from 1, doubling) kept most batches far under the concurrency
        n = llm_cfg.records_per_batch
        super().__init__(min_batch_size=n, max_batch_size=n)
        self.kind, self.llm_cfg, self.generate, self.judge = kind, llm_cfg, generate, judge
        # the model and every request field (prompt, sampling, seed) make the key
        self.cache = CallCache(cache_dir, kind, {"model": llm_cfg.model, "server_args": llm_cfg.server_args})

    def load_model(self) -> llm.LlmClient:
        import os

        cfg = self.llm_cfg
        # without an endpoint, the server starts when a batch first needs it (not when the
        # cache answers every request), and wants the key it was started with, if any
        if cfg.endpoint:
            api_key = os.environ.get(cfg.api_key_env, "EMPTY")
        else:
            api_key = llm.server_api_key(cfg.server_args, cfg.server_env) or "EMPTY"
        model = model_store.resolve(cfg.model)
        return llm.LlmClient(cfg.endpoint, model, api_key, cfg.concurrency, cfg.timeout_s, cfg.retries,
                             cfg.backoff_s)

    def _server_url(self) -> str:
        cfg = self.llm_cfg
        return llm.server_url(project_path(cfg.server_python), model_store.resolve(cfg.model),
                              cfg.server_args, cfg.server_env, cfg.startup_timeout_s)

    def answers(self, model: llm.LlmClient, requests: Sequence[llm.LlmRequest]) -> list[dict]:
        """Each request's answer as ``{text, error, attempts, finish_reason}``: from the call
        cache, or from the server (started, or restarted if it died, when the cache lacks some)."""
        def call(missing: list[llm.LlmRequest]) -> list[dict]:
            if not self.llm_cfg.endpoint:  # the machine's server: started, or restarted if it died
                model.base_url = self._server_url()
            return [_plain(answer) for answer in model.complete(missing)]

        return self.cache.run(requests, call, keep=lambda answer: answer["error"] is None)

    def run_inference(self, batch: Sequence[dict], model: llm.LlmClient, inference_args=None) -> Iterable:
        if self.kind == "generate":
            tasks = [prompts.load(draw_task(r["id"], self.generate.tasks, self.generate.seed)) for r in batch]
            requests = [generate_request(r, p, self.generate) for r, p in zip(batch, tasks, strict=True)]
        else:
            prompt = prompts.load(self.judge.prompt)
            requests = [judge_request(r, prompt, self.judge, self.generate.seed) for r in batch]
            if self.judge.constrain:
                requests = [_with_regex(q, JUDGE_REGEX) for q in requests]
        answers = self.answers(model, requests)
        results = []
        for k, (record, answer) in enumerate(zip(batch, answers, strict=True)):
            if answer["error"]:
                results.append((record, llm.LLM_ERROR, {"error": answer["error"], "attempts": answer["attempts"]}))
            elif self.kind == "generate":
                results.append(self._generated(record, tasks[k], answer["text"]))
            else:
                results.append(self._judged(record, answer["text"]))
        return results

    def _generated(self, record: dict, prompt: prompts.Prompt, text: str | None):
        instruction, reason, detail = parse_instruction(text, prompt, record["response_en"], self.generate)
        if reason:
            return record, reason
        out = {**record, "instruction_en": instruction, "task": prompt.id}
        if detail:
            out["task_detail"] = detail
        return with_provenance(out, "generate", self.llm_cfg.model, prompt.name), None

    def _judged(self, record: dict, text: str | None):
        score = parse_score(text)
        if score is None:
            return record, JUDGE_UNPARSEABLE
        out = {**record, "scores": {**record.get("scores", {}), "judge": score}}
        return with_provenance(out, "judge", self.llm_cfg.model, self.judge.prompt), None

    def get_metrics_namespace(self) -> str:
        return self.kind


def _plain(answer: llm.LlmResult) -> dict:
    return {"text": answer.text, "error": answer.error, "attempts": answer.attempts,
            "finish_reason": answer.finish_reason}


def _with_regex(request: llm.LlmRequest, pattern: str) -> llm.LlmRequest:
    return replace(request, schema=None, regex=pattern)


def judge_threshold(result, min_score: int | None):
    """lambda on the stored judge score; one that is not a finite number is ``score_invalid``."""
    return below_threshold(result, "judge", min_score, JUDGE_LOW)


class LlmStage(beam.PTransform):
    """generate or judge: records -> StageOutput (judge applies lambda = ``judge.min_score``
    to the stored score)."""

    def __init__(self, kind: str, llm_cfg: LlmConfig, generate: GenerateConfig, judge: JudgeConfig,
                 cache_dir: str | None = None):
        super().__init__()
        self.kind, self.judge = kind, judge
        self.handler = LlmHandler(kind, llm_cfg, generate, judge, cache_dir)

    def expand(self, records):
        results = records | "Infer" >> RunInference(self.handler)
        if self.kind == "judge":
            results = results | "Lambda" >> beam.Map(judge_threshold, self.judge.min_score)
        return route(results, self.kind)
