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
from pipeline.methods.shared import Method, counters, run_stages, write_outputs
from pipeline.ops import resume
from transforms.languages import Language
from transforms.models import evol, llm
from transforms.models.evol_stages import BALANCE, EVOLVE, JUDGE, QC, SELECT, TURNS, SelectSeeds, final_record
from transforms.records.shapes import StageOutput
from transforms.select import langid
from transforms.sources import seeds
from transforms.sources.cc100 import input_pattern
from transforms.sources.config import SourceConfig
from transforms.stages import Context


def run_config(config: Config, lang: Language) -> dict:
    """What the stats record about the parameters of this language's evol run."""
    cfg = config.for_lang(lang.code)
    label = langid.expected_label(lang, cfg.select.lid.labels)
    return {
        "preset": config.preset,
        "method": "evol",
        "evol": to_dict(cfg.evol),
        "llm": llm.recorded(to_dict(cfg.llm)),  # no secret: server_env, keys, the endpoint's credentials
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
    method: Method,
    langs: list[Language],
    config: Config,
    input_template: str,
    output: str,
    plan: resume.Plan,
    fingerprints: dict[str, dict[str, str]],
) -> None:
    """One graph of ``method``'s stages (``EVOL``'s) for all languages, as the natural method's: reused stages from their
    checkpoints, then those of ``plan.run`` in order, each saving its checkpoint."""
    codes = [lang.code for lang in langs]
    context = Context(config, tuple(langs), f"{output}/cache")
    cfgs = context.per_lang(lambda cfg: cfg.evol)  # overrides applied

    def select() -> StageOutput:
        files = seeds.seed_files(input_template, {lang.code: input_pattern(input_template, lang) for lang in langs})
        out = (
            p
            | "SeedFiles" >> beam.Create(files)
            | "ReadSeeds" >> beam.FlatMap(seeds.read_seeds, codes, config.select.read.strict_input)
            | "ByLang" >> beam.GroupByKey()
            | "SelectSeeds" >> beam.ParDo(SelectSeeds(cfgs)).with_outputs("rejects", "stats", main="records")
        )
        return StageOutput(out.records, out.rejects, out.stats)

    stages = run_stages(p, method, context, output, plan, fingerprints, select)
    write_outputs(stages, output, codes, {lang.code: run_config(config, lang) for lang in langs},
                  list(fingerprints),
                  finish=lambda state: final_record(state, cfgs, config.preset), extra=record_mix)


def _configure(config: Config, template: str | None) -> tuple[Config, str]:
    """The seeds: ``--input``, or the bundled ones."""
    from pipeline.options import SAMPLE_SEEDS, SAMPLE_TEMPLATE

    return config, SAMPLE_SEEDS if template in (None, SAMPLE_TEMPLATE) else template


def _dry_run(args, langs, config) -> int:
    from pipeline.ops import dryrun_evol

    return dryrun_evol.run(args, langs, config)


def _run_info(result, output: str) -> dict:
    """Seed rows of a shared seed file of another language the run does not ask for, per reason
    (``other_language``; rows of no or an unknown lang are the first language's rejects), from
    the run's metrics (``transforms/sources/seeds.py``)."""
    import logging

    counts: dict[str, int] = {}
    for _, name, n in counters(result, "seeds"):
        reason = name.removeprefix("unassigned.")
        counts[reason] = counts.get(reason, 0) + n
    for reason, n in sorted(counts.items()):
        logging.getLogger("pipeline").info("%d seed rows belong to no language of this run (%s): counted in "
                                           "%s/run.json", n, reason, output)
    return {"method": "evol", "unassigned_seed_rows": dict(sorted(counts.items()))}


EVOL = Method(
    name="evol",
    stages=(SELECT, EVOLVE, TURNS, QC, JUDGE, BALANCE),
    build=build,
    configure=_configure,
    sources=lambda config, template: (SourceConfig(path=template),),
    inputs=lambda config, template, langs: {lang.code: input_pattern(template, lang) for lang in langs},
    dry_run=_dry_run,
    run_info=_run_info,
    fingerprint_tag=("evol",),
)
