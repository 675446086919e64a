"""What every method's wiring shares: the stage loop (stages read back from checkpoints or run
and saved, with the resource hints of model stages) and the three outputs (data, rejects,
stats) that every stage feeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import apache_beam as beam

from pipeline.config import Config
from pipeline.ops import resume
from pipeline.ops.outdir import staging_dir
from transforms.records import checkpoint
from transforms.records.shapes import StageOutput
from transforms.records.write import DatasetStats, WritePerLang, WriteStats, json_line
from transforms.stages import Context, Stage


@dataclasses.dataclass(frozen=True)
class Method:
    """A way of making the dataset: its stages in order (each declared in its own module,
    ``transforms/stages.py``) and what the command line asks of it. ``pipeline/main.py`` asks the
    method, never its name."""

    name: str
    stages: tuple[Stage, ...]
    # (p, method, langs, config, input, output, plan, fingerprints): the graph, read to written
    build: Callable[..., None]
    # (config, --input) -> (config, input): the method's inputs settled (defaults, --input's place)
    configure: Callable[[Config, str | None], tuple[Config, str]]
    # (config, input) -> the SourceConfigs whose files must exist before the run starts
    sources: Callable[[Config, str], tuple]
    # (config, input, langs) -> per language what its first stage reads (select's fingerprint)
    inputs: Callable[[Config, str, list], dict]
    # (args, langs, config) -> exit status: --dry-run
    dry_run: Callable[..., int]
    # (a finished run's result, output) -> what OUT/run.json adds for this method
    run_info: Callable[[Any, str], dict]
    # (config, input, langs, local workers) -> why the run would run out of memory, or None
    memory: Callable[..., str | None] = lambda config, template, langs, workers: None
    fingerprint_tag: tuple[str, ...] = ()  # a method's first stage differs from another's
    calibrate: bool = False  # --calibrate measures its stages
    # stages placed after the first one in a run whose config asks for them (``Stage.applies``):
    # the natural method's draw for --target (``transforms/records/draw.py``)
    optional: tuple[Stage, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def stage(self, name: str) -> Stage:
        every = (*self.stages, *self.optional)
        return every[[stage.name for stage in every].index(name)]

    def knows(self, name: str) -> bool:
        return any(stage.name == name for stage in (*self.stages, *self.optional))

    def for_config(self, config: Config) -> Method:
        """The method as a run of ``config`` takes it: with the ``optional`` stages it asks for."""
        taken = tuple(stage for stage in self.optional if stage.applies(config))
        if not taken:
            return self
        return dataclasses.replace(self, stages=(self.stages[0], *taken, *self.stages[1:]), optional=())

    def upto(self, until: str) -> tuple[Stage, ...]:
        """The stages up to and including ``until``."""
        return self.stages[: self.names.index(until) + 1]


def counters(result, namespace: str):
    """(namespace, name, count) of the run's counters in ``namespace``, or in every namespace
    below it when it ends with "/"."""
    for counter in result.metrics().query()["counters"]:
        found = counter.key.metric.namespace
        if found == namespace or (namespace.endswith("/") and found.startswith(namespace)):
            yield found, counter.key.metric.name, counter.committed or 0


class Built(NamedTuple):
    """A stage in the graph: its output, and its records and rejects as the JSON lines its
    checkpoint saved (``checkpoint.Saved``; None for a stage read back from its checkpoint)."""

    out: StageOutput
    saved: checkpoint.Saved | None = None


def load_reused(p: beam.Pipeline, output: str, plan: resume.Plan) -> list[Built]:
    """The stages of ``plan.reused``, read back from their checkpoints; only the last one's
    records travel on (the earlier ones give their rejects and counts)."""
    last_reused = list(plan.reused)[-1] if plan.reused else None
    return [
        Built(p | f"Load{stage.title()}" >> checkpoint.LoadStage(output, stage, markers,
                                                                 with_records=stage == last_reused))
        for stage, markers in plan.reused.items()
    ]


def run_stages(p: beam.Pipeline, method: Method, context: Context, output: str, plan: resume.Plan,
               fingerprints: dict[str, dict[str, str]], select: Callable[[], StageOutput]) -> list[Built]:
    """Every stage of ``method``, in order: those of ``plan.reused`` read back from their
    checkpoints, then those of ``plan.run``, each saving its checkpoint. ``select()`` builds the
    first stage from the input; a later one is its declaration's transform, run after a fusion
    break (the records spread over all the workers afresh, its checkpoint not fused with the
    next stage's work), with the stage's Beam resource hints."""
    config = context.config
    stages = load_reused(p, output, plan)
    for stage in plan.run:
        inputs = None  # the stage's records, counted before the fusion break: its error budget's base
        declared = method.stage(stage)
        if declared is method.stages[0]:
            out = select()
        else:
            inputs = stages[-1].out.records
            records = inputs | f"Spread{stage.title()}" >> beam.Reshuffle()
            transform = declared.transform(context).with_resource_hints(**declared.hints(config))
            out = records | stage.title() >> transform
        save = checkpoint.SaveStage(output, stage, fingerprints[stage],
                                    config.max_transient_error_share, inputs)
        stages.append(Built(out, out | f"Save{stage.title()}" >> save))
    return stages


def write_outputs(stages: list[Built], output: str, codes: list[str], configs: dict[str, dict],
                  order: list[str], finish=None, extra=None) -> None:
    """The last stage's records to ``data/``, every stage's rejects to ``rejects/`` and every
    stage's counts, with the dataset's own, to ``stats/`` (``configs``: per language, what the
    stats record about the run's parameters; ``order``: the stages' names). A method may give ``finish`` (its records' final
    shape) and ``extra`` (its own dataset counts of a final record). Lines a checkpoint saved
    are written as they are: each record is serialised once. They go to ``output``'s staging dir,
    which ``pipeline/ops/outdir.py: swap`` moves into ``output`` once the run has succeeded."""
    staged = staging_dir(output)
    last = stages[-1]
    records = last.out.records
    if finish is not None:
        records = records | "Finish" >> beam.Map(finish)
    if finish is None and last.saved is not None:
        data = last.saved.records
    else:
        data = records | "DataLines" >> beam.Map(json_line)
    data | "WriteData" >> WritePerLang(staged, "data", codes)
    rejects = []  # one PCollection of lines a stage, or more: written without a Flatten
    for i, stage in enumerate(stages):
        if stage.saved is not None:
            rejects += stage.saved.rejects
        else:
            rejects.append(stage.out.rejects | f"RejectLines{i}" >> beam.Map(json_line))
    tuple(rejects) | "WriteRejects" >> WritePerLang(staged, "rejects", codes)  # Beam: a tuple, not a list
    dataset = records | "DatasetStats" >> DatasetStats(codes, extra)
    stats = [*(stage.out.stats for stage in stages), dataset] | "AllStats" >> beam.Flatten()
    stats | "WriteStats" >> WriteStats(staged, configs, order)
