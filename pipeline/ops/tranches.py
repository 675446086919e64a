"""``--target N``: the run in tranches (``docs/target.md``).

Each tranche is one run of the method's graph with a draw size per language (``target.draw``,
set as a per-language override, so the draw's fingerprint holds it): select is read back from
its checkpoint after the first tranche, the draw and the stages after it run again over the
larger draw, and the model-call cache answers every record an earlier tranche sent. After a
tranche, each language's stats say how many records reached the end (``trim``'s ``in``); a
language short of its target draws the next tranche, sized from the pass rate measured so far
(``order.next_draw``), until it has its target or every selected fragment is drawn. The trim
at the end of every tranche holds the output to exactly N.

The first tranche is sized from the pass rates of the stages (``Stage.pass_rate``: ``cost``
figures, measured ones where ``--calibrate`` wrote them, else the preset's). A run remembers,
per language, the draw it ended with for the command it ran (``OUT/stages/draw/{lang}/
tranches.json``): the same command again starts from that draw, so every stage is read back
from its checkpoint and no model is called.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.config import Config, with_draws
from pipeline.ops import resume
from pipeline.ops.outdir import staging_dir
from transforms.draw.config import has_target
from transforms.draw.order import first_draw, next_draw
from transforms.draw.stage import STAGE, TRIM
from transforms.records import checkpoint
from transforms.records.cache import digest
from transforms.records.write import write_json
from transforms.settings import ConfigError

logger = logging.getLogger(__name__)
MAX_TRANCHES = 32  # a safety stop: each tranche at least doubles the draw when nothing passed


def check(args, method, config: Config):
    """The method as a run with ``config``'s target takes it (the draw after select); a
    ConfigError (exit 2, one line) for a target the run cannot reach."""
    if not has_target(config):
        return method
    if not any(stage.applies is not None and stage.applies(config) for stage in method.optional):
        raise ConfigError(f"--target is not yet supported with --method {method.name}")
    if args.until == method.names[0]:
        raise ConfigError(f"--target counts final records and needs the model stages: not with --until {args.until}")
    return method.for_config(config)


def pass_rate(cfg: Config, method, until: str) -> float:
    """The share of drawn records expected to reach the end of ``until``: the product of the
    stages' pass rates (their ``cost`` figures) for one language's config."""
    return math.prod(stage.pass_rate(cfg) for stage in method.upto(until)[1:])


class Lang:
    """One language's tranches: its target and the draws so far."""

    def __init__(self, code: str, target: int | None, margin: float):
        self.code, self.target, self.margin = code, target, margin
        self.sizes: list[int] = []  # the draw size asked for, per tranche
        self.draws: list[int] = []  # records drawn (fewer where the language has fewer)
        self.kept: list[int] = []  # records that reached the end, per tranche (before the trim)
        self.candidates: int | None = None
        self.final: int | None = None
        self.done = target is None

    def summary(self) -> dict:
        return {"target": self.target, "selected": self.candidates, "draws": self.draws, "kept": self.kept,
                "records": self.final, "tranches": len(self.draws)}


class RunResults:
    """The results of a run's tranches as one: their metrics' counters together (model calls
    made and answered from the cache add up over the tranches), and ``tranches``, what
    ``OUT/run.json`` says of them."""

    def __init__(self, results: list, tranches: dict[str, dict]):
        self.results, self.tranches = results, tranches

    def metrics(self):
        return self

    def query(self) -> dict[str, list]:
        out: dict[str, list] = {"counters": [], "distributions": [], "gauges": []}
        for result in self.results:
            for kind, found in result.metrics().query().items():
                out.setdefault(kind, []).extend(found)
        return out


def _history_path(output: str, code: str) -> str:
    return f"{checkpoint.stage_dir(output, STAGE, code)}/tranches.json"


def _read_history(output: str, code: str) -> dict | None:
    path = _history_path(output, code)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _read_stats(output: str, code: str) -> dict:
    with FileSystems.open(f"{staging_dir(output)}/stats/{code}.json") as f:  # before the swap
        return json.loads(f.read().decode("utf-8"))


def run(args, method, langs, config: Config, run_one: Callable[..., Any], once: bool = False):
    """Tranches until every language has its target or has drawn every selected fragment:
    ``run_one(config, prints, plan)`` clears what a tranche redoes and runs the graph once (its result, or None when it failed).
    Returns (the results together, or None on failure; the first tranche's plan)."""
    from transforms.models import llm

    inputs = method.inputs(config, args.input, langs)
    state = {}
    for lang in langs:
        cfg = config.for_lang(lang.code)
        state[lang.code] = Lang(lang.code, cfg.target.records, cfg.target.margin)
    draws = {}
    for code, s in state.items():
        cfg = config.for_lang(code)
        draws[code] = None if s.target is None else first_draw(s.target, pass_rate(cfg, method, args.until), s.margin)
    command = _command(config, inputs, args.until, method, draws)
    for code, s in state.items():  # the same command as last time: start where it ended
        history = _read_history(args.output, code)
        if s.target is not None and history and history.get("command") == command[code]:
            draws[code] = history["draw"]
    results, first_plan = [], None
    try:
        for tranche in range(1, MAX_TRANCHES + 1):
            tranche_config = with_draws(config, draws)
            prints = resume.fingerprints(tranche_config, inputs, args.until, method)
            tranche_plan = resume.plan(args.output, prints, args.from_stage if tranche == 1 else None)
            first_plan = first_plan or tranche_plan
            logger.info("target, tranche %d: %s", tranche, ", ".join(
                f"{code} draws {'all' if k is None else k}" for code, k in draws.items()))
            result = run_one(tranche_config, prints, tranche_plan)
            if result is None:
                return None, first_plan
            results.append(result)
            if once:  # Beam's --dry_run: the job was built, not run
                break
            draws, done = _next(args.output, state, draws)
            if done:
                break
    finally:
        llm.stop_all()  # the tranches shared the vLLM server; none outlives the run
    for code, s in state.items():
        if s.target is not None and s.draws:
            write_json(_history_path(args.output, code), {"command": command[code], "draw": s.sizes[-1]})
        if s.target is not None and s.final is not None and s.final < s.target:
            logger.warning(
                "%s: %d records, %d short of the target of %d: every one of its %d selected fragments "
                "was drawn and only these passed (more input, or lower thresholds, would give more)",
                code, s.final, s.target - s.final, s.target, s.candidates)
    return RunResults(results, {code: s.summary() for code, s in state.items() if s.target is not None}), first_plan


def _command(config: Config, inputs, until: str, method, draws: dict) -> dict[str, str]:
    """Per language, what decides the draws a run goes through: the first tranche's
    fingerprints (input, every stage's config, the first draw) and the target."""
    prints = resume.fingerprints(with_draws(config, draws), inputs, until, method)
    return {code: digest([{stage: p[code] for stage, p in prints.items()}, config.for_lang(code).target.records,
                          config.for_lang(code).target.margin]) for code in draws}


def _next(output: str, state: dict[str, Lang], draws: dict) -> tuple[dict, bool]:
    """The next tranche's draws from the stats a tranche wrote; whether every language is done."""
    nxt, done = dict(draws), True
    for code, s in state.items():
        if s.done:  # its draw is as it was: the cache answered all of it
            continue
        stats = _read_stats(output, code)
        stages = stats["stages"]
        s.candidates = stats["selected_records"]
        s.sizes.append(draws[code])
        s.draws.append(stages[STAGE]["out"])
        s.kept.append(stages[TRIM]["in"])
        s.final = stages[TRIM]["out"]
        more = next_draw(s.target, s.candidates, draws[code], s.kept[-1], s.margin)
        s.done = more is None
        if more is not None:
            logger.info("target: %s kept %d of the %d it needs from %d drawn: drawing %d", code, s.kept[-1],
                        s.target, s.draws[-1], more)
            nxt[code], done = more, False
    return nxt, done


def price(selection, cfg: Config, engine, until: str, method, estimate) -> tuple[Any, list, dict]:
    """``--dry-run`` with a target: the stages priced on the draw the target takes, not on every
    selected fragment (``estimate``: the dry run's own, on the drawn share of ``selection``). The
    first tranche is sized as the run sizes it; at the expected pass rates it reaches the target,
    so one tranche is expected, unless the language has too few fragments (then all are drawn)."""
    import dataclasses

    from pipeline.ops.dryrun import StageEstimate

    target, n = cfg.target.records, selection.records
    rate = pass_rate(cfg, method, until)
    k = min(n, first_draw(target, rate, cfg.target.margin))
    share = k / n if n else 0.0
    drawn = dataclasses.replace(selection, records=k, response_chars=selection.response_chars * share)
    stages = estimate(drawn, cfg, engine, until, method=method)
    stages[0] = dataclasses.replace(stages[0], records_out=n)  # select: every fragment selected
    stages[1] = dataclasses.replace(stages[1], records_in=n)  # draw: k of them
    passed = stages[-1].records_out
    stages.append(StageEstimate(TRIM, passed, min(passed, target)))
    info = {"target": target, "selected": round(n, 1), "drawn": round(k, 1), "pass_rate": round(rate, 4),
            "expected_records": round(min(passed, target), 1), "tranches": 1,
            "shortfall": round(max(0.0, target - passed), 1)}
    note = (f"; target {target}: draw {k:,.0f} of ~{n:,.0f} selected fragments ({share:.0%}) in 1 tranche at a "
            f"pass rate of {rate:.2f}" + (f", ~{target - passed:,.0f} short: too few fragments" if passed < target else ""))
    return dataclasses.replace(selection, note=selection.note + note), stages, info
