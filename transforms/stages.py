"""What a stage is, declared once in its own module: its name, how its Beam transform is built,
what its output depends on (the checkpoint's fingerprint), its resource hints, what the dry run
prices it at, and what the report says of it. A method (``pipeline/methods/``) lists its stages
in order; the command line, resume, the dry run and the report ask the declarations, never a
table keyed by the stage's name. NeMo Curator's ``ProcessingStage`` and datatrove's
``PipelineStep`` declare a step the same way.

This module is light (no Beam, no model library): a method lists its stages without importing
their engines, which a stage's ``transform`` imports when the graph is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from transforms.settings import semantic


class Context(NamedTuple):
    """What a stage's transform is built from: the run's config, its languages, the call cache."""

    config: Any  # pipeline.config.Config: the run's, before per-language overrides
    langs: tuple  # transforms.languages.Language of the run
    cache: str  # the model-call cache's directory

    def per_lang(self, section: Callable[[Any], Any]) -> dict[str, Any]:
        """language code -> ``section`` of that language's config (its overrides applied)."""
        return {lang.code: section(self.config.for_lang(lang.code)) for lang in self.langs}


class Call(NamedTuple):
    """A stage's call of one model, per record, as the dry run prices it: tokens sent, how many
    of them the model computes (not a prompt prefix the server has cached), tokens generated."""

    engine: str  # nllb, comet or llm (``cost.engines``)
    sent: float
    computed: float
    generated: float = 0.0


class PromptChars(NamedTuple):
    """A prompt's fixed text in characters: ``shared`` before its first field (the same for every
    request, so vLLM's prefix cache computes it once) and ``own`` after it."""

    shared: float
    own: float


class Pricing(NamedTuple):
    """What the dry run prices a natural model stage's calls from, per record: the language's
    config (its ``cost`` figures), tokens of R_x, R_en, I_en and I_x, and ``prompt``: the mean
    fixed text of prompts given as name -> weight."""

    config: Any
    src: float  # R_x
    en: float  # R_en
    instr_en: float
    instr_x: float
    prompt: Callable[[dict[str, float]], PromptChars]

    def llm(self, prompts: dict[str, float], fields: float, generated: float) -> Call:
        """An LLM call with the fixed text of ``prompts`` and ``fields`` tokens of data."""
        chars = self.prompt(prompts)
        per_token = self.config.cost.english_chars_per_token
        return Call("llm", (chars.shared + chars.own) / per_token + fields, chars.own / per_token + fields, generated)


def keep_all(config) -> float:
    return 1.0


def pass_rate(threshold, rate: float) -> float:
    """The share a check keeps: its expected ``rate``, or all when its ``threshold`` is off."""
    return 1.0 if threshold is None else rate


def section_hints(section) -> dict[str, str]:
    """The Beam resource hints a config section asks for (``accelerator``, ``min_ram``), as a
    ModelHandler's ``get_resource_hints`` gives them: the runner schedules the stage on workers
    that have them."""
    hints = {"accelerator": section.accelerator, "min_ram": section.min_ram}
    return {name: value for name, value in hints.items() if value}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a method. Functions take the run's config (``config``), the language's
    config with its overrides applied (``cfg``) or the ``config`` dict the stats recorded."""

    name: str  # --until and --from-stage name it; its checkpoint, stats and rejects carry it
    # what, besides its input, determines the stage's output for a language: its fingerprint
    fingerprint: Callable[[Any], dict]
    # (model, prompts) for report.md's table of the stages that ran, from the stats' config
    report: Callable[[dict], tuple[str, str]]
    # the Beam transform: records -> StageOutput; None for a method's first stage (it reads
    # the input, and the method builds it)
    transform: Callable[[Context], Any] | None = None
    hints: Callable[[Any], dict[str, str]] = lambda config: {}  # Beam resource hints
    llm: bool = False  # it calls the LLM: a local run needs the vLLM environment or an endpoint
    # the dry run: the share of its records the stage is expected to keep, and (natural
    # method) its model calls per record; the evol method's dry run builds its calls from
    # ``steps``, the LLM steps the stage takes (``evol.next_request``)
    pass_rate: Callable[[Any], float] = keep_all
    calls: Callable[[Pricing], list[Call]] = lambda pricing: []
    steps: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # the reject reasons it may give (README lists them)
    # a stage only some runs take (the draw of --target): whether a run of this config (the
    # run's, before per-language overrides) takes it; None: every run
    applies: Callable[[Any], bool] | None = None


def fingerprint_of(*sections: str) -> Callable[[Any], dict]:
    """A fingerprint of whole config sections, less their operational fields."""
    return lambda cfg: {name: semantic(getattr(cfg, name)) for name in sections}


def prompt_texts(names) -> dict[str, dict]:
    """The named prompts' whole text, for a fingerprint: a changed prompt redoes its stage."""
    import prompts

    return {name: semantic(prompts.load(name)) for name in sorted(names)}
