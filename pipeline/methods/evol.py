"""The evol method's wiring (M2Lingual style), over the stages every method shares:

    read seeds -> select (diversity sampling; plan: operation, structure, turns)
      -> evolve (step 1) -> turns (step 2) -> qc (per-turn language ID, near duplicates)
      -> judge (the conversation rubric) -> balance (the kept task mix near its weights) -> write

each stage saved as a checkpoint or read back from one (``pipeline/ops/resume.py``), its
model calls through the call cache, its rejects and counts into the same outputs as the
natural method's. Per-turn language ID and dedup run before the judge, so no judge call is
spent on a conversation they drop.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.config import Config, to_dict
from pipeline.languages import Language
from pipeline.methods.shared import run_stages, write_outputs
from pipeline.ops import resume
from transforms.models import evol, llm
from transforms.models.evol_stages import (
    BalanceMix,
    ConversationQc,
    EvolLlmStage,
    SelectSeeds,
    final_record,
)
from transforms.records.shapes import StageOutput
from transforms.select import langid
from transforms.sources import seeds
from transforms.sources.cc100 import input_pattern


def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's evol run."""
    cfg = config.for_lang(lang.code)
    label = langid.expected_label(lang, cfg.select.lid.labels)
    return {
        "preset": config.preset,
        "method": "evol",
        "evol": to_dict(cfg.evol),
        "llm": {**{k: v for k, v in to_dict(cfg.llm).items() if k != "server_env"},
                "server_args": llm.redact_args(cfg.llm.server_args)},
        "judge": {"min_score": cfg.evol.judge_min_score},  # the threshold the judge histogram shows
        "resolved": {"lid": {"model": cfg.select.lid.model_path or "lid.176.ftz (packaged)",
                             "expected_label": label,
                             "checked": label is not None and cfg.evol.min_turn_lid_confidence is not None}},
    }


def record_mix(record: dict) -> list[tuple[str, int]]:
    """The task/operation/structure/turns/length counts of a finished conversation."""
    return evol.record_stats(record) if "messages" in record else []


def build(
    p: beam.Pipeline,
    langs: list[Language],
    config: Config,
    input_template: str,
    output: str,
    plan: resume.Plan,
    fingerprints: dict[str, dict[str, str]],
) -> None:
    """One graph for all languages, as the natural method's: reused stages from their
    checkpoints, then those of ``plan.run`` in order, each saving its checkpoint."""
    codes = [lang.code for lang in langs]
    cfgs = {lang.code: config.for_lang(lang.code).evol for lang in langs}  # overrides applied
    cache = f"{output}/cache"
    lid = {lang.code: config.for_lang(lang.code).select.lid for lang in langs}

    def make_stage(stage: str) -> beam.PTransform:
        if stage == "qc":
            return ConversationQc(lid, cfgs)
        if stage == "balance":
            return BalanceMix(cfgs)
        return EvolLlmStage(stage, config.llm, cfgs, cache)

    def select() -> StageOutput:
        files = seeds.seed_files(input_template, {lang.code: input_pattern(input_template, lang) for lang in langs})
        out = (
            p
            | "SeedFiles" >> beam.Create(files)
            | "ReadSeeds" >> beam.FlatMap(seeds.read_seeds, codes)
            | "ByLang" >> beam.GroupByKey()
            | "SelectSeeds" >> beam.ParDo(SelectSeeds(cfgs)).with_outputs("rejects", "stats", main="records")
        )
        return StageOutput(out.records, out.rejects, out.stats)

    stages = run_stages(p, config, output, plan, fingerprints, select, make_stage)
    write_outputs(stages, output, codes, {lang.code: run_config(config, lang) for lang in langs},
                  finish=lambda state: final_record(state, cfgs, config.preset), extra=record_mix)
