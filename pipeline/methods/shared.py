"""What every method's wiring shares: the stage loop (stages read back from checkpoints or run
and saved, with the resource hints of model stages) and the three outputs (data, rejects,
stats) that every stage feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import apache_beam as beam

from pipeline.config import Config
from pipeline.ops import resume
from transforms.records import checkpoint
from transforms.records.shapes import StageOutput
from transforms.records.write import DatasetStats, WritePerLang, WriteStats, json_line


def resource_hints(config: Config, stage: str) -> dict[str, str]:
    """The Beam resource hints of a model stage of either method (GPU type and count, memory)
    from the preset: the runner schedules only these stages on the workers that have them. A
    stage without a model (evol's qc) has none."""
    section = {"translate": config.translate, "backtranslate": config.translate, "qe": config.qe,
               "generate": config.llm, "judge": config.llm, "evolve": config.llm,
               "turns": config.llm}.get(stage)
    if section is None:
        return {}
    hints = {"accelerator": section.accelerator, "min_ram": section.min_ram}
    return {name: value for name, value in hints.items() if value}


class Stage(NamedTuple):
    """A stage in the graph: its output, and its records and rejects as the JSON lines its
    checkpoint saved (``checkpoint.Saved``; None for a stage read back from its checkpoint)."""

    out: StageOutput
    saved: checkpoint.Saved | None = None


def load_reused(p: beam.Pipeline, output: str, plan: resume.Plan) -> list[Stage]:
    """The stages of ``plan.reused``, read back from their checkpoints; only the last one's
    records travel on (the earlier ones give their rejects and counts)."""
    last_reused = list(plan.reused)[-1] if plan.reused else None
    return [
        Stage(p | f"Load{stage.title()}" >> checkpoint.LoadStage(output, stage, markers,
                                                                 with_records=stage == last_reused))
        for stage, markers in plan.reused.items()
    ]


def run_stages(p: beam.Pipeline, config: Config, output: str, plan: resume.Plan,
               fingerprints: dict[str, dict[str, str]], select: Callable[[], StageOutput],
               make_stage: Callable[[str], beam.PTransform]) -> list[Stage]:
    """Every stage of a method, in order: those of ``plan.reused`` read back from their
    checkpoints, then those of ``plan.run``, each saving its checkpoint. ``select()`` builds the
    first stage from the input; ``make_stage(stage)`` builds a later one, run after a fusion
    break (the records spread over all the workers afresh, its checkpoint not fused with the
    next stage's work), with the stage's Beam resource hints."""
    stages = load_reused(p, output, plan)
    for stage in plan.run:
        inputs = None  # the stage's records, counted before the fusion break: its error budget's base
        if stage == "select":
            out = select()
        else:
            inputs = stages[-1].out.records
            records = inputs | f"Spread{stage.title()}" >> beam.Reshuffle()
            hints = resource_hints(config, stage)
            out = records | stage.title() >> make_stage(stage).with_resource_hints(**hints)
        save = checkpoint.SaveStage(output, stage, fingerprints[stage],
                                    config.max_transient_error_share, inputs)
        stages.append(Stage(out, out | f"Save{stage.title()}" >> save))
    return stages


def write_outputs(stages: list[Stage], output: str, codes: list[str], configs: dict[str, dict],
                  finish=None, extra=None) -> None:
    """The last stage's records to ``data/``, every stage's rejects to ``rejects/`` and every
    stage's counts, with the dataset's own, to ``stats/`` (``configs``: per language, what the
    stats record about the run's parameters). A method may give ``finish`` (its records' final
    shape) and ``extra`` (its own dataset counts of a final record). Lines a checkpoint saved
    are written as they are: each record is serialised once."""
    last = stages[-1]
    records = last.out.records
    if finish is not None:
        records = records | "Finish" >> beam.Map(finish)
    if finish is None and last.saved is not None:
        data = last.saved.records
    else:
        data = records | "DataLines" >> beam.Map(json_line)
    data | "WriteData" >> WritePerLang(output, "data", codes)
    rejects = []  # one PCollection of lines a stage, or more: written without a Flatten
    for i, stage in enumerate(stages):
        if stage.saved is not None:
            rejects += stage.saved.rejects
        else:
            rejects.append(stage.out.rejects | f"RejectLines{i}" >> beam.Map(json_line))
    tuple(rejects) | "WriteRejects" >> WritePerLang(output, "rejects", codes)  # Beam: a tuple, not a list
    dataset = records | "DatasetStats" >> DatasetStats(codes, extra)
    stats = [*(stage.out.stats for stage in stages), dataset] | "AllStats" >> beam.Flatten()
    stats | "WriteStats" >> WriteStats(output, configs)
