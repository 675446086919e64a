"""The natural method's wiring: per language, read -> select -> ... -> write, each stage
saved as a checkpoint, or read back from one (``pipeline/ops/resume.py`` decides which)."""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, to_dict, with_input
from pipeline.languages import Language
from pipeline.methods.shared import run_stages, write_outputs
from pipeline.ops import resume
from transforms.models import llm
from transforms.records.shapes import StageOutput
from transforms.select import dedup, langid
from transforms.select.stage import Select
from transforms.sources.cc100 import BATCH_DOCS
from transforms.sources.inputs import ReadSources


def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's natural run."""
    cfg = config.for_lang(lang.code).select
    bands, rows, min_matches = dedup.bands_of(cfg.dedup)
    label = langid.expected_label(lang, cfg.lid.labels)
    return {
        "preset": config.preset,
        "select": to_dict(cfg),
        "translate": to_dict(config.translate),
        "qe": to_dict(config.qe),
        "llm": {**{k: v for k, v in to_dict(config.llm).items() if k != "server_env"},
                "server_args": llm.redact_args(config.llm.server_args)},
        "generate": to_dict(config.generate),
        "judge": to_dict(config.judge),
        "sources": to_dict(config.sources),
        "resolved": {
            "dedup": {"bands": bands, "rows": rows, "min_band_matches": min_matches},
            "lid": {
                "model": cfg.lid.model_path or "lid.176.ftz (packaged)",
                "expected_label": label,
                "checked": label is not None,
            },
        },
    }


def build(
    p: beam.Pipeline,
    langs: list[Language],
    config: Config,
    input_template: str,
    output: str,
    plan: resume.Plan,
    fingerprints: dict[str, dict[str, str]],
) -> None:
    """One graph for all languages: the language travels with each element. The stages of
    ``plan.reused`` are read back from their checkpoints; those of ``plan.run`` run in order,
    each saving its checkpoint; every stage adds its rejects and counts to the same outputs.
    The inputs are ``config.sources``; without any, one CC-100 source reads ``input_template``."""
    config = with_input(config, None, input_template)
    per_lang = {lang.code: (lang, config.for_lang(lang.code).select) for lang in langs}
    codes = list(per_lang)
    cache = f"{output}/cache"

    def make_stage(stage: str):
        # imported here: the model stages' modules import Beam's RunInference and with it torch,
        # seconds of start-up (measured) that a run stopping at select does not need
        from transforms.models.generate import LlmStage
        from transforms.models.qe import QualityEstimate
        from transforms.models.translate import Translate

        return {
            "translate": lambda: Translate(config.translate, config.qe, cache_dir=cache),
            "generate": lambda: LlmStage("generate", config.llm, config.generate, config.judge, cache),
            "judge": lambda: LlmStage("judge", config.llm, config.generate, config.judge, cache),
            "backtranslate": lambda: Translate(
                config.translate, None, "backtranslate", "instruction_en", "instruction", to_english=False,
                cache_dir=cache,
            ),
            "qe": lambda: QualityEstimate(config.qe, cache),
        }[stage]()

    def select() -> StageOutput:
        read = {code: cfg.read for code, (_, cfg) in per_lang.items()}
        documents = p | "Read" >> ReadSources(config.sources, langs, read, BATCH_DOCS)
        return documents | "Select" >> Select(per_lang)

    stages = run_stages(p, config, output, plan, fingerprints, select, make_stage)
    write_outputs(stages, output, codes, {lang.code: run_config(config, lang) for lang in langs})
