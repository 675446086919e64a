"""The natural method's wiring: per language, read -> select -> ... -> write, each stage
saved as a checkpoint, or read back from one (``pipeline/ops/resume.py`` decides which)."""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, with_input
from pipeline.languages import Language
from pipeline.methods.shared import load_reused, resource_hints, run_config, write_outputs
from pipeline.ops import resume
from transforms.records import checkpoint
from transforms.records.shapes import StageOutput
from transforms.select.stage import Select
from transforms.sources.cc100 import BATCH_DOCS
from transforms.sources.inputs import ReadSources


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

    stages: list[StageOutput] = load_reused(p, output, plan)
    for stage in plan.run:
        inputs = None  # the stage's records, counted before the fusion break: its error budget's base
        if stage == "select":
            read = {code: cfg.read for code, (_, cfg) in per_lang.items()}
            documents = p | "Read" >> ReadSources(config.sources, langs, read, BATCH_DOCS)
            out = documents | "Select" >> Select(per_lang)
        else:
            # a fusion break: each model stage gets the records spread over all the workers
            # afresh, and its checkpoint is not fused with the next stage's work
            inputs = stages[-1].records
            records = inputs | f"Spread{stage.title()}" >> beam.Reshuffle()
            out = records | stage.title() >> make_stage(stage).with_resource_hints(
                **resource_hints(config, stage)
            )
        save = checkpoint.SaveStage(output, stage, fingerprints[stage], config.checkpoint_shards,
                                    config.max_transient_error_share, inputs)
        out | f"Save{stage.title()}" >> save
        stages.append(out)
    write_outputs(stages, output, codes, {lang.code: run_config(config, lang) for lang in langs})
