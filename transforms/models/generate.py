"""The LLM stages: generate (an English instruction I_en for each R_en) and judge (a 5-point
additive rating of the pair). Pure functions build requests and parse answers, ``GenerateStep``
and ``JudgeStep`` hold them per stage; ``LlmHandler`` (``llm_handler.py``) runs a batch of a
step through the one async client; ``LlmStage`` is the Beam shell.

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
from collections.abc import Sequence
from dataclasses import replace

import apache_beam as beam

import prompts
from transforms.models import llm
from transforms.models.config import GenerateConfig, JudgeConfig, LlmConfig
from transforms.models.qe import below_threshold
from transforms.records.shapes import route, with_provenance
from transforms.stages import Stage, fingerprint_of, pass_rate, prompt_texts, section_hints

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


class GenerateStep:
    """The generate stage's requests and answers, for ``LlmHandler``: an English instruction
    I_en for each R_en, with a task prompt drawn per record."""

    name = "generate"  # the stage's (GENERATE)
    scores: tuple[str, ...] = ()  # the scores it gives, whose histograms the stats keep
    threshold = None  # nothing to apply after the answers are read

    def __init__(self, cfg: GenerateConfig, model: str):
        self.cfg, self.model = cfg, model

    def requests(self, batch: Sequence[dict]) -> tuple[list[llm.LlmRequest], list[prompts.Prompt]]:
        """Each record's request, and the task prompt it was built from."""
        tasks = [prompts.load(draw_task(r["id"], self.cfg.tasks, self.cfg.seed)) for r in batch]
        return [generate_request(r, p, self.cfg) for r, p in zip(batch, tasks, strict=True)], tasks

    def parse(self, record: dict, prompt: prompts.Prompt, text: str | None):
        instruction, reason, detail = parse_instruction(text, prompt, record["response_en"], self.cfg)
        if reason:
            return record, reason
        out = {**record, "instruction_en": instruction, "task": prompt.id}
        if detail:
            out["task_detail"] = detail
        return with_provenance(out, self.name, self.model, prompt.name), None


class JudgeStep:
    """The judge stage's requests and answers, for ``LlmHandler``: a 5-point additive rating of
    each (I_en, R_en) pair, its ``Score: N`` ending forced by a regex where ``constrain``."""

    name = "judge"  # the stage's (JUDGE)
    scores = ("judge",)

    def __init__(self, cfg: JudgeConfig, seed: int, model: str):
        self.cfg, self.seed, self.model = cfg, seed, model

    def requests(self, batch: Sequence[dict]) -> tuple[list[llm.LlmRequest], list[None]]:
        prompt = prompts.load(self.cfg.prompt)
        requests = [judge_request(r, prompt, self.cfg, self.seed) for r in batch]
        if self.cfg.constrain:
            requests = [_with_regex(q, JUDGE_REGEX) for q in requests]
        return requests, [None] * len(batch)

    def parse(self, record: dict, _, text: str | None):
        score = parse_score(text)
        if score is None:
            return record, JUDGE_UNPARSEABLE
        out = {**record, "scores": {**record.get("scores", {}), "judge": score}}
        return with_provenance(out, self.name, self.model, self.cfg.prompt), None

    def threshold(self, result):
        """lambda (``judge.min_score``) on the stored score."""
        return judge_threshold(result, self.cfg.min_score)


def _with_regex(request: llm.LlmRequest, pattern: str) -> llm.LlmRequest:
    return replace(request, schema=None, regex=pattern)


def judge_threshold(result, min_score: int | None):
    """lambda on the stored judge score; one that is not a finite number is ``score_invalid``."""
    return below_threshold(result, "judge", min_score, JUDGE_LOW)


class LlmStage(beam.PTransform):
    """generate or judge (``step``): records -> StageOutput, with the step's ``threshold`` (the
    judge's lambda) applied to the stored scores."""

    def __init__(self, step: GenerateStep | JudgeStep, llm_cfg: LlmConfig, cache_dir: str | None = None):
        super().__init__()
        self.step, self.llm_cfg, self.cache_dir = step, llm_cfg, cache_dir

    def expand(self, records):
        from apache_beam.ml.inference.base import RunInference

        from transforms.models.llm_handler import LlmHandler

        results = records | "Infer" >> RunInference(LlmHandler(self.step, self.llm_cfg, self.cache_dir))
        if self.step.threshold is not None:
            results = results | "Lambda" >> beam.Map(self.step.threshold)
        return route(results, self.step.name, scores=self.step.scores)


def _model(config: dict) -> str:
    return config.get("llm", {}).get("model", "?")


GENERATE = Stage(
    "generate",
    fingerprint=lambda cfg: {**fingerprint_of("llm", "generate")(cfg), "prompts": prompt_texts(cfg.generate.tasks)},
    report=lambda c: (_model(c), ", ".join(f"{t} ({w:g})" for t, w in c.get("generate", {}).get("tasks", {}).items())),
    transform=lambda ctx: LlmStage(GenerateStep(ctx.config.generate, ctx.config.llm.model), ctx.config.llm, ctx.cache),
    hints=lambda config: section_hints(config.llm),
    llm=True,
    pass_rate=lambda cfg: cfg.cost.generate_pass_rate,
    calls=lambda p: [p.llm(p.config.generate.tasks, p.en, p.instr_en)],
    reasons=(llm.LLM_ERROR, LLM_UNPARSEABLE, INSTRUCTION_EMPTY, INSTRUCTION_TOO_LONG, INSTRUCTION_COPIES_RESPONSE,
             MCQ_INVALID),
)

JUDGE = Stage(
    "judge",
    fingerprint=lambda cfg: {**fingerprint_of("llm", "judge")(cfg), "seed": cfg.generate.seed,
                             "prompts": prompt_texts([cfg.judge.prompt])},
    report=lambda c: (_model(c), c.get("judge", {}).get("prompt", "?")),
    transform=lambda ctx: LlmStage(JudgeStep(ctx.config.judge, ctx.config.generate.seed, ctx.config.llm.model),
                                   ctx.config.llm, ctx.cache),
    hints=lambda config: section_hints(config.llm),
    llm=True,
    pass_rate=lambda cfg: pass_rate(cfg.judge.min_score, cfg.cost.judge_pass_rate),
    calls=lambda p: [p.llm({p.config.judge.prompt: 1.0}, p.instr_en + p.en, p.config.cost.judge_output_tokens)],
    reasons=(llm.LLM_ERROR, JUDGE_UNPARSEABLE, JUDGE_LOW),
)
