"""``--target N``: the draw stage between select and the model stages, and the trim after the
last one (``docs/target.md``).

    selected records --Draw--> the tranche's share of them (the rest: ``not_drawn``)
      ... model stages ...
    last stage's records --Trim--> exactly N (the extra: ``over_target``)

Both cut a language's records to a size along the draw's stratified order (``order.py``). Only
each record's stratum and hash travel to one place per language (8 bytes a record, in arrays);
the records themselves are cut where they are, against a per-stratum hash cut-off (a side input
of a few entries a language). The size of each tranche is the run's business
(``pipeline/ops/tranches.py``): it sets ``target.draw``.
"""

from __future__ import annotations

from array import array

import apache_beam as beam

from transforms.draw.config import has_target
from transforms.draw.order import STRATA, cutoffs, draw_hash, stratum
from transforms.records import counts
from transforms.records.shapes import StageOutput, record_reject, route
from transforms.stages import Stage

STAGE = "draw"
TRIM = "trim"  # the step after the last stage: counted in the stats as a stage of its own
NOT_DRAWN = "not_drawn"
OVER_TARGET = "over_target"


class _Hashes(beam.CombineFn):
    """(stratum, hash) pairs -> stratum -> array of hashes: 8 bytes a record."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, pair):
        name, value = pair
        acc.setdefault(name, array("Q")).append(value)
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            for name, values in acc.items():
                out.setdefault(name, array("Q")).extend(values)
        return out

    def extract_output(self, acc):
        return acc


def place(record: dict, tasks: dict[str, tuple], seeds: dict[str, int]) -> tuple[str, int]:
    """A record's (stratum, hash): its task drawn as generate draws it (``tasks``: per language
    the task weights and seed), its hash with the language's draw seed."""
    from transforms.models.generate import draw_task

    weights, task_seed = tasks[record["lang"]]
    return stratum(record, draw_task(record["id"], weights, task_seed)), draw_hash(record["id"], seeds[record["lang"]])


def pick(record: dict, limits: dict[str, dict[str, int]], tasks: dict, seeds: dict, reason: str):
    """(record, None) when it is within its stratum's cut-off (or its language is not cut),
    else (record, ``reason``)."""
    limit = limits.get(record["lang"])
    if limit is None:
        return record, None
    name, value = place(record, tasks, seeds)
    return record, (None if value <= limit.get(name, -1) else reason)


def not_drawn_line(record: dict, stage: str, reason: str, detail: dict | None = None) -> dict:
    """A record left out of the draw: its reject line without the text (the text stays in the
    select checkpoint, and a later, larger target may draw it)."""
    return {"id": record["id"], "lang": record["lang"], "stage": stage, "reason": reason, "source": record["source"]}


class Cut(beam.PTransform):
    """Records -> StageOutput of ``stage``: per language the first ``sizes[lang]`` of the
    stratified order kept, the others rejected as ``reason`` (a language of size None keeps
    all). ``tasks``: per language (task weights, seed) of generate's task draw, for the strata."""

    def __init__(self, stage: str, reason: str, sizes: dict[str, int | None], tasks: dict[str, tuple],
                 seed: dict[str, int], make_reject=record_reject):
        super().__init__()
        self.stage, self.reason, self.sizes, self.tasks, self.seed = stage, reason, sizes, tasks, seed
        self.make_reject = make_reject

    def expand(self, records) -> StageOutput:
        sizes, tasks, seeds = self.sizes, self.tasks, self.seed
        limits = (
            records
            | "Sized" >> beam.Filter(lambda r: sizes.get(r["lang"]) is not None)
            | "Place" >> beam.Map(lambda r: (r["lang"], place(r, tasks, seeds)))
            | "Gather" >> beam.CombinePerKey(_Hashes())
            | "Cutoffs" >> beam.MapTuple(lambda lang, hashes: (lang, cutoffs(hashes, sizes[lang], seeds[lang])))
        )
        results = records | "Pick" >> beam.Map(pick, beam.pvalue.AsDict(limits), tasks, seeds, self.reason)
        out = route(results, self.stage, self.make_reject)
        # every language counted, 0 where no record came: the stats list the step
        zeros = records.pipeline | "EveryLang" >> beam.Create(
            [((lang, counts.stage(self.stage, "in")), 0) for lang in sorted(sizes)], reshuffle=False)
        return StageOutput(out.records, out.rejects, (out.stats, zeros) | "AllStats" >> beam.Flatten())


def draw_transform(ctx) -> Cut:
    """The draw of the run's ``target.draw`` records per language (all of them where None)."""
    return Cut(STAGE, NOT_DRAWN, ctx.per_lang(lambda cfg: cfg.target.draw if cfg.target.records else None),
               ctx.per_lang(lambda cfg: (cfg.generate.tasks, cfg.generate.seed)),
               ctx.per_lang(lambda cfg: cfg.target.seed), make_reject=not_drawn_line)


def trim_transform(ctx) -> Cut:
    """The last stage's records cut to each language's ``target.records``: the extra of the
    last tranche (the last in the draw's order, stratum by stratum) is ``over_target``."""
    return Cut(TRIM, OVER_TARGET, ctx.per_lang(lambda cfg: cfg.target.records),
               ctx.per_lang(lambda cfg: (cfg.generate.tasks, cfg.generate.seed)),
               ctx.per_lang(lambda cfg: cfg.target.seed))


DRAW = Stage(
    STAGE,
    # the draw's output: its size, its seed, what strata are, and the task draw behind them
    # (not ``records``: a larger target that needs no larger draw redoes nothing)
    fingerprint=lambda cfg: {"draw": cfg.target.draw if cfg.target.records else None, "seed": cfg.target.seed,
                             "strata": STRATA, "tasks": cfg.generate.tasks, "task_seed": cfg.generate.seed},
    report=lambda c: ("stratified by source, length and task; no model", ""),
    transform=draw_transform,
    applies=has_target,
    reasons=(NOT_DRAWN,),
)
