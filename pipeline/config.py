"""A run's configuration: presets in YAML, the user's file, per-language overrides, merged into
one frozen ``Config`` whose sections are the config types beside the stages they configure
(``transforms/sources/config.py``, ``transforms/select/config.py``, ``transforms/models/config.py``).

A run's configuration is ``presets/base.yaml``, then the chosen preset, then the user's
``--config`` file, merged key by key. Per-language overrides live under ``languages.<code>`` and
take the same shape as the top level (``languages: {jpn: {select: {fragment: {min_chars: 20}}}}``).
Field names say direction and unit (``max_symbol_ratio``, ``min_chars``); None disables a check.
Each section validates its own values when built; ``build`` names the key that failed.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transforms import languages
from transforms.models.config import EvolConfig, GenerateConfig, JudgeConfig, LlmConfig, QeConfig, TranslateConfig
from transforms.draw.config import TargetConfig
from transforms.select.config import SelectConfig
from transforms.settings import COUNT, POSITIVE, SHARE, ConfigError, check_ranges
from transforms.sources.config import CC100_SOURCE, SourceConfig, check_sources

PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = ("demo", "laptop", "small", "paper")


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
    # GPU), usd_per_gpu_hour; one set per run (checked by pipeline.ops.dryrun.engines as the config loads).
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

    def __post_init__(self):
        from pipeline.ops.dryrun import engines  # the estimate's own check of its engines

        check_ranges(self, sample_documents=COUNT, chars_per_token=POSITIVE, english_chars_per_token=POSITIVE,
                     english_chars_ratio=POSITIVE, instruction_en_chars=POSITIVE, judge_output_tokens=POSITIVE,
                     evol_message_chars=POSITIVE, **{key: SHARE for key in (
                         "evol_call_pass_rate", "evol_qc_pass_rate", "qe_response_pass_rate", "generate_pass_rate",
                         "judge_pass_rate", "qe_instruction_pass_rate")})
        engines(self)


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
    return dataclasses.replace(config, sources=tuple(sources))  # checked as a Config is


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
    # --target: the final records a language ends with (``transforms/records/draw.py``)
    target: TargetConfig = field(default_factory=TargetConfig)
    # Error budget: the share of a stage's records (per language) that may end in a transient
    # error (``llm_error``: the server failed after retries) before the run fails with exit 1,
    # leaving the stage without its complete marker. None: no limit.
    max_transient_error_share: float | None = 0.05
    # Raw per-language overrides, applied by ``for_lang``.
    languages: dict[str, dict] = field(default_factory=dict)
    # The natural method's inputs (``SourceConfig``); empty: one CC-100 source from --input
    sources: tuple[SourceConfig, ...] = ()

    def __post_init__(self):
        check_ranges(self, max_transient_error_share=SHARE)
        check_sources(self.sources)

    def for_lang(self, code: str) -> Config:
        """This config with the overrides of language ``code`` applied."""
        override = self.languages.get(code)
        if not override:
            return self
        base = to_dict(self)
        merged = _merge(base, _adding_server_args(base, override))
        return build(Config, merged, f"config.languages.{code}")

    def to_dict(self) -> dict:
        return to_dict(self)


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
    values = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ConfigError as e:  # the type's own check (``__post_init__``): say where it was
        raise ConfigError(f"{where}.{e.key}: {e}" if e.key else f"{where}: {e}") from e


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


def _adding_server_args(base: dict, override: dict) -> dict:
    """``override`` with its ``llm.server_args`` added to those of ``base`` (``llm.add_args``:
    a flag given again replaces the base's), so a user's file keeps the preset's essentials."""
    from transforms.models.llm import add_args

    extra = (override.get("llm") or {}).get("server_args") if isinstance(override.get("llm"), dict) else None
    if not isinstance(extra, (list, tuple)) or not all(isinstance(a, str) for a in extra):
        return override  # not a list of strings: ``build`` says so
    current = (base.get("llm") or {}).get("server_args") or []
    return {**override, "llm": {**override["llm"], "server_args": add_args([str(a) for a in current], extra)}}


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


def with_target(config: Config, records: int | None) -> Config:
    """``config`` with ``target.records`` set for the run (``--target N``; None: unchanged); a
    language's own ``languages.<code>.target.records`` in config still wins for it."""
    if records is None:
        return config
    return dataclasses.replace(config, target=dataclasses.replace(config.target, records=records))


def with_draws(config: Config, draws: dict[str, int | None]) -> Config:
    """``config`` with each language's ``target.draw`` (the tranche's draw size) set, as a
    per-language override: what the draw stage's fingerprint and transform read."""
    overrides = dict(config.languages)
    for code, draw in draws.items():
        overrides[code] = _merge(overrides.get(code, {}), {"target": {"draw": draw}})
    return dataclasses.replace(config, languages=overrides)


def load(preset: str = "demo", config_file: str | None = None) -> Config:
    """The configuration of a run: base, preset and the user's file, merged in that order."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; one of: {', '.join(PRESETS)}")
    data = _read_yaml(PRESETS_DIR / "base.yaml")
    data = _merge(data, _read_yaml(PRESETS_DIR / f"{preset}.yaml"))
    if config_file:
        data = _merge(data, _adding_server_args(data, _read_yaml(config_file)))
    data["preset"] = preset
    config = build(Config, data, "config")
    for code in config.languages:  # validate every override now, not on a worker
        languages.get(code)
        if isinstance(config.languages[code], dict) and "sources" in config.languages[code]:
            raise ConfigError(f"config.languages.{code}: sources are set for the whole run, not per "
                              "language (a source's rows name their language)")
        config.for_lang(code)
    return config
