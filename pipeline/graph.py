"""Wire the stages of one run: per language, read -> select -> ... -> write, each stage
saved as a checkpoint, or read back from one (``pipeline/resume.py`` decides which)."""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, to_dict
from pipeline.languages import Language
from pipeline import resume
from transforms import checkpoint, dedup, langid, llm
from transforms.read import BATCH_DOCS, ReadCC100, input_pattern
from transforms.records import StageOutput
from transforms.select import Select
from transforms.generate import LlmStage
from transforms.qe import QualityEstimate
from transforms.translate import Translate
from transforms.write import DatasetStats, WritePerLang, WriteStats

def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's run."""
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
        "resolved": {
            "dedup": {"bands": bands, "rows": rows, "min_band_matches": min_matches},
            "lid": {
                "model": cfg.lid.model_path or "lid.176.ftz (packaged)",
                "expected_label": label,
                "checked": label is not None,
            },
        },
    }


def resource_hints(config: Config, stage: str) -> dict[str, str]:
    """The Beam resource hints of a model stage (GPU type and count, memory) from the preset:
    the runner schedules only these stages on the workers that have them."""
    section = {"translate": config.translate, "backtranslate": config.translate, "qe": config.qe,
               "generate": config.llm, "judge": config.llm}[stage]
    hints = {"accelerator": section.accelerator, "min_ram": section.min_ram}
    return {name: value for name, value in hints.items() if value}


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
    each saving its checkpoint; every stage adds its rejects and counts to the same outputs."""
    per_lang = {lang.code: (lang, config.for_lang(lang.code).select) for lang in langs}
    codes = list(per_lang)
    cache = f"{output}/cache"
    make_stage = {
        "translate": lambda: Translate(config.translate, config.qe, cache_dir=cache),
        "generate": lambda: LlmStage("generate", config.llm, config.generate, config.judge, cache),
        "judge": lambda: LlmStage("judge", config.llm, config.generate, config.judge, cache),
        "backtranslate": lambda: Translate(
            config.translate, None, "backtranslate", "instruction_en", "instruction", to_english=False,
            cache_dir=cache,
        ),
        "qe": lambda: QualityEstimate(config.qe, cache),
    }
    stages: list[StageOutput] = []
    last_reused = list(plan.reused)[-1] if plan.reused else None
    for stage, markers in plan.reused.items():
        load = checkpoint.LoadStage(output, stage, markers, with_records=stage == last_reused)
        stages.append(p | f"Load{stage.title()}" >> load)
    for stage in plan.run:
        inputs = None  # the stage's records, counted before the fusion break: its error budget's base
        if stage == "select":
            sources = [
                (code, input_pattern(input_template, lang), cfg.read)
                for code, (lang, cfg) in per_lang.items()
            ]
            documents = p | "Read" >> ReadCC100(sources, BATCH_DOCS)
            out = documents | "Select" >> Select(per_lang)
        else:
            # a fusion break: each model stage gets the records spread over all the workers
            # afresh, and its checkpoint is not fused with the next stage's work
            inputs = stages[-1].records
            records = inputs | f"Spread{stage.title()}" >> beam.Reshuffle()
            out = records | stage.title() >> make_stage[stage]().with_resource_hints(
                **resource_hints(config, stage)
            )
        save = checkpoint.SaveStage(output, stage, fingerprints[stage], config.checkpoint_shards,
                                    config.max_transient_error_share, inputs)
        out | f"Save{stage.title()}" >> save
        stages.append(out)
    stages[-1].records | "WriteData" >> WritePerLang(output, "data", codes)
    rejects = [stage.rejects for stage in stages] | "AllRejects" >> beam.Flatten()
    rejects | "WriteRejects" >> WritePerLang(output, "rejects", codes)
    dataset = stages[-1].records | "DatasetStats" >> DatasetStats(codes)
    stats = [*(stage.stats for stage in stages), dataset] | "AllStats" >> beam.Flatten()
    stats | "WriteStats" >> WriteStats(output, {lang.code: run_config(config, lang) for lang in langs})
