"""``python -m pipeline.main --langs tel,hin``: parse, check, build the graph, run."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import sys
import traceback
import warnings
from functools import partial

logger = logging.getLogger("pipeline")
LOCAL_RUNNERS = {"DirectRunner", "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}


class UsageError(Exception):
    """A problem with the arguments, input or config: one line on stderr, exit status 2."""


def _check_inputs(sources, langs) -> None:
    """Every source can be read as configured (``transforms/sources/inputs.py``), and every
    language has CC-100 files."""
    from pipeline.options import SAMPLE_TEMPLATE, sample_langs
    from transforms.sources import inputs

    try:
        missing = inputs.check(sources, langs)
    except inputs.SourceError as e:
        raise UsageError(str(e)) from e
    if missing and any(s.path == SAMPLE_TEMPLATE for s in sources if not s.tabular):
        raise UsageError(
            f"the bundled sample holds only {', '.join(sample_langs())}, not "
            f"{', '.join(code for code, _ in missing)}: pass your CC-100 files with --input, "
            "e.g. --input '/data/cc100/{cc100}.txt.xz'"
        )
    if missing:
        code, pattern = missing[0]
        raise UsageError(f"no input files match {pattern} (language {code})")


def _check_beam_options(beam_args: list[str]) -> None:
    """Every argument that is not ours must be one of Apache Beam's pipeline options (a
    misspelled flag of ours would otherwise be a Beam warning, and the run would go on)."""
    import difflib

    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import parser

    parsers = []  # Beam's parser of every pipeline option it knows (all its option classes)
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)
    _, unknown = parsers[0].parse_known_args(beam_args)
    flags = [arg for arg in unknown if arg.startswith("-")]
    if unknown and not flags:
        raise UsageError(f"unexpected argument {unknown[0]!r}")
    if flags:
        name = flags[0].split("=", 1)[0]
        known = [o for p in (parser(), parsers[0]) for a in p._actions for o in a.option_strings]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"unknown option {name}: neither this pipeline's nor an Apache Beam "
                         f"pipeline option (see --help){hint}")


def _runner(beam_args: list[str]) -> str | None:
    """The --runner among Beam's arguments (``--runner X`` or ``--runner=X``), if any."""
    runner = None
    for i, arg in enumerate(beam_args):
        if arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
        elif arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    return runner


def _runs_here(beam_args: list[str]) -> bool:
    """Whether the workers run on this machine (no --runner, or a local one)."""
    return _runner(beam_args) in (None, *LOCAL_RUNNERS)


def _check_method(args, method) -> None:
    """--until and --from-stage name stages of ``method`` (the last one by default)."""
    args.until = args.until or method.names[-1]
    for flag, stage in (("--until", args.until), ("--from-stage", args.from_stage)):
        if stage is not None and stage not in method.names:
            raise UsageError(f"{flag} {stage}: not a stage of --method {method.name} ({', '.join(method.names)})")
    if args.calibrate and not method.calibrate:
        raise UsageError(f"--calibrate measures the natural method's stages; use --dry-run for {method.name}")


def _target(text: str | None) -> int | None:
    """``--target``'s value, checked (``transforms/draw/config.py``)."""
    from transforms.draw.config import parse_target

    try:
        return None if text is None else parse_target(text)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _check_llm(config, stages, beam_args: list[str]) -> None:
    """A local run whose ``stages`` call the LLM needs the vLLM environment, or an endpoint
    (remote workers have their own: the container's)."""
    from transforms.models.config import project_path

    if not any(stage.llm for stage in stages) or config.llm.endpoint or not _runs_here(beam_args):
        return
    python = project_path(config.llm.server_python)
    if not os.path.exists(python):
        raise UsageError(
            f"the vLLM server's Python {python} does not exist: build it with "
            "`make vllm-env`, set llm.server_python, or pass --llm-endpoint URL"
        )


def _plan(args, method, langs, config):
    """The fingerprints of the stages up to --until, and which of them checkpoints cover."""
    from pipeline.ops import resume

    prints = resume.fingerprints(config, method.inputs(config, args.input, langs), args.until, method)
    return prints, resume.plan(args.output, prints, args.from_stage)


def _model_calls(result) -> dict[str, dict[str, int]]:
    """Model calls made and answered from the cache, per kind, from the run's metrics."""
    from pipeline.methods.shared import counters

    calls: dict[str, dict[str, int]] = {}
    for _, name, n in counters(result, "model_calls"):
        kind, outcome = name.rsplit(".", 1)
        calls.setdefault(kind, {"made": 0, "cached": 0})[outcome] += n
    return dict(sorted(calls.items()))


def one_line(e: BaseException, limit: int = 600) -> str:
    """An exception as one line: its type and whole message (a model's load error spans
    lines, and Beam adds the step it failed in at the end); a long one keeps its start and,
    where the cause usually is, its end."""
    text = f"{type(e).__name__}: {' '.join(str(e).split())}".rstrip(": ")
    return text if len(text) <= limit else f"{text[:limit // 3]} ... {text[-(limit - limit // 3):]}"


def _caused_by(e: BaseException, kind: type) -> BaseException | None:
    """The first exception of type ``kind`` in ``e``'s chain (Beam wraps a worker's), or None."""
    seen = e
    while seen is not None and not isinstance(seen, kind):
        seen = seen.__cause__ or seen.__context__
    return seen


def failure_line(e: BaseException) -> str:
    """What a failed run's line says: a file that could not be written as ``no space left on
    device writing PATH``, else ``one_line``."""
    import errno

    from transforms.records.write import WriteError

    if written := _caused_by(e, WriteError):
        return str(written)
    full = _caused_by(e, OSError)  # a write outside the pipeline's writers
    if full is not None and full.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return str(WriteError(full.errno, full.strerror, full.filename or "a file"))
    return one_line(e)


def _failed(output: str, e: BaseException, details: str, hidden=()) -> int:
    """A failed run: its staged outputs removed (OUT's previous output stays whole, and a full
    disk gets their space back), the details in ``OUT/error.txt``, one line on stderr; 1."""
    from pipeline.ops import outdir
    from transforms.models import llm
    from transforms.records.write import WriteError, write_text

    outdir.discard(output)
    errors = f"{output}/error.txt"
    try:
        write_text(errors, llm.scrub(details, hidden))
        where = f"traceback: {errors}"
    except WriteError as not_written:
        where = f"no traceback: {not_written}"
    print(f"error: the run failed: {llm.scrub(failure_line(e), hidden)} ({where})", file=sys.stderr)
    return 1


class TracebackTrap(logging.Filter):
    """Keeps tracebacks off the terminal: a log record with one (Beam logs each failed bundle
    with its traceback, again at every retry) is kept here, for ``OUT/error.txt``."""

    def __init__(self):
        super().__init__()
        self.kept: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or (record.levelno >= logging.ERROR and "\n" in record.getMessage()):
            self.kept.append(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s").format(record))
            return False
        return True


def transient_summary(all_stats: list[dict]) -> str | None:
    """The line a run with transient rejects (within the error budget) ends with, or None."""
    from transforms.records.checkpoint import TRANSIENT_REASONS

    counts: dict[str, int] = {}
    for stats in all_stats:
        for stage, entry in stats["stages"].items():
            for reason, n in entry["rejected"].items():
                if reason in TRANSIENT_REASONS and n:
                    key = f"{stage} {reason}"
                    counts[key] = counts.get(key, 0) + n
    if not counts:
        return None
    return (f"{sum(counts.values())} records ended in transient errors ("
            + ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
            + "), within the error budget; they are in OUT/rejects and not in OUT/data: "
            "run the same command again to retry them (the model-call cache answers the rest)")


def _model_copies(result) -> dict[str, dict[str, int]]:
    """Staged models copied to this machine's or the workers' disks (``transforms/models/model_store.py``),
    per model: copies made and bytes copied, from the run's metrics."""
    from pipeline.methods.shared import counters

    copies: dict[str, dict[str, int]] = {}
    for _, name, n in counters(result, "models"):
        kind, model = name.split(".", 1)
        copies.setdefault(model, {"copies": 0, "copied_bytes": 0})[kind] += n
    return dict(sorted(copies.items()))


def main(argv: list[str] | None = None) -> int:
    # Quiet while checking arguments (Beam's imports warn about optional cloud clients), so a
    # bad argument shows as one line; informative once the run starts.
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # google-api-core (the dataflow extra) warns about Python 3.11's end of life on every import
    warnings.filterwarnings("ignore", message="You are using a Python version", category=FutureWarning)
    from pipeline import config as config_mod
    from pipeline import options
    from pipeline.methods import METHODS
    from pipeline.ops import outdir, tranches
    from pipeline.ops.resume import ResumeError
    from transforms import languages
    from transforms.records.write import WriteError

    args, beam_args = options.parser().parse_known_args(argv)
    try:
        if not args.langs:
            raise UsageError("--langs is required, e.g. --langs tel,hin")
        langs = languages.parse_langs(args.langs)
        config = config_mod.load(args.preset, args.config)
        config = config_mod.with_target(config, _target(args.target))
        if args.llm_endpoint:
            config = dataclasses.replace(
                config, llm=dataclasses.replace(config.llm, endpoint=args.llm_endpoint)
            )
        if args.strict_input:
            config = config_mod.with_strict_input(config)
        method = METHODS[args.method]
        config, args.input = method.configure(config, args.input)
        _check_method(args, method)
        method = tranches.check(args, method, config)  # with --target: the draw after select
        _check_beam_options(beam_args)
        _check_inputs(method.sources(config, args.input), langs)
        if args.dry_run and not args.calibrate:
            from pipeline.ops.dryrun import InputError

            try:
                return method.dry_run(args, langs, config)
            except InputError as e:
                raise UsageError(str(e)) from e
        _check_llm(config, method.stages if args.calibrate else method.upto(args.until),
                   [] if args.calibrate else beam_args)
        logging.getLogger().setLevel(logging.INFO)
        for chatty in ("apache_beam", "httpx", "httpx2", "openai"):  # per-bundle, per-request lines
            logging.getLogger(chatty).setLevel(logging.WARNING)
        with outdir.owned(args.output):  # one run at a time (OutputInUse: exit 2)
            if args.calibrate:
                from pipeline.ops import calibrate

                return calibrate.run(args, langs, config)
            prints, plan = _plan(args, method, langs, config)
            _check_memory(args, beam_args, method, langs, config, plan)
            return run(args, beam_args, method, langs, config, prints, plan)
    except (UsageError, languages.UnknownLanguageError, config_mod.ConfigError, ResumeError,
            outdir.OutputInUse) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:  # the lock could not be written
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"error: interrupted; {args.output} holds the previous run's output as it was", file=sys.stderr)
        return 130


def run(args, beam_args, method, langs, config, prints, plan) -> int:
    """Run ``method``'s graph up to --until (with ``--target``, once a tranche): clear the
    checkpoints the run redoes, build and run the graph, write the report and ``run.json`` beside
    the old outputs and swap them in (``pipeline/ops/outdir.py``). 0 once the data is whole; 1
    (the cause on stderr, the traceback in ``OUT/error.txt``) when the run failed, OUT's previous
    output left whole."""
    beam_args = _local_runner_args(beam_args)
    # Beam and the libraries leave ~1M long-lived objects; freezing them keeps every full
    # collection from rescanning them (14% of a local 50,000-document select run, measured).
    gc.freeze()
    from apache_beam.options.pipeline_options import PipelineOptions, TestOptions

    options = PipelineOptions(beam_args)

    def run_one(config, prints, plan, stop_servers=True):
        from pipeline.ops import outdir

        outdir.discard(args.output)  # a tranche's staged outputs: the next one writes them all again
        _clear_redone(args.output, langs, plan)
        return _run_graph(args, options, method, langs, config, prints, plan, stop_servers)

    from transforms.draw.config import has_target

    if has_target(config):  # --target: tranches until each language has it
        from pipeline.ops import tranches

        result, plan = tranches.run(args, method, langs, config, partial(run_one, stop_servers=False),
                                    once=options.view_as(TestOptions).dry_run)
    else:
        result = run_one(config, prints, plan)
    if result is None:
        return 1
    if options.view_as(TestOptions).dry_run:
        logger.info("dry run (--dry_run=True): the job was built, not submitted")
        return 0
    try:
        _summarise(args, method, langs, config, plan, result)
    except OSError as e:  # writing the report, run.json or the swap
        return _failed(args.output, e, traceback.format_exc())
    return 0


def _check_memory(args, beam_args, method, langs, config, plan) -> None:
    """A run whose first stage would outgrow this machine's memory stops here, with what to
    change, instead of meeting the OOM killer halfway (only a local runner's workers are here)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    if method.names[0] not in plan.run or not _runs_here(beam_args):
        return
    workers = PipelineOptions(beam_args).view_as(DirectOptions).direct_num_workers or os.cpu_count()
    reason = method.memory(config, args.input, langs, workers)
    if reason:
        raise UsageError(reason)


def _local_runner_args(beam_args: list[str]) -> list[str]:
    """Beam's arguments with the local runner's defaults: FnApiRunner (the DirectRunner would
    first try to download the Prism runner; FnApiRunner is the engine it falls back to for batch
    pipelines, without the download), and with ``--direct_num_workers`` other than 1, worker
    processes (in one process, its threads share one interpreter lock: no faster than one)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    if _runner(beam_args) is None:
        beam_args = [*beam_args, "--runner=FnApiRunner"]
    direct = PipelineOptions(beam_args).view_as(DirectOptions)
    if direct.direct_num_workers != 1 and not any(a.startswith("--direct_running_mode") for a in beam_args):
        beam_args = [*beam_args, "--direct_running_mode=multi_processing"]
    return beam_args


def _clear_redone(output: str, langs, plan) -> None:
    """The checkpoints of the stages this run redoes: none of them mixes into this run's output
    (its data, rejects and stats are written afresh, in the staging dir)."""
    from transforms.records import checkpoint

    for stage in plan.run:
        for lang in langs:
            checkpoint.clear(output, stage, lang.code)
    if plan.reused:
        logger.info("reusing the checkpoints of %s; running %s",
                    ", ".join(plan.reused), ", ".join(plan.run) or "no stage")


def _run_graph(args, options, method, langs, config, prints, plan, stop_servers=True):
    """Build and run the graph: its result, or None when it failed (one line on stderr;
    tracebacks, secrets scrubbed, in ``OUT/error.txt``). ``stop_servers`` False leaves the
    vLLM server this process started running, for the next tranche of a --target run."""
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from transforms.models import llm
    from transforms.records import spill
    from transforms.records.write import write_text

    errors = f"{args.output}/error.txt"
    if FileSystems.exists(errors):  # a previous run's
        FileSystems.delete([errors])
    trap = TracebackTrap()
    hidden = llm.secrets(config.llm.server_args, config.llm.server_env, urls=[config.llm.endpoint])  # e.g. in a server's log tail
    for handler in logging.getLogger().handlers:
        handler.addFilter(trap)
    try:
        p = beam.Pipeline(options=options)
        method.build(p, method, langs, config, args.input, args.output, plan, prints)
        result = p.run()
        result.wait_until_finish()
    except Exception as e:  # noqa: BLE001 - a failed run is one line here, the details in a file
        if _caused_by(e, KeyboardInterrupt):  # Ctrl-C in a bundle: Beam wraps it
            raise KeyboardInterrupt from e
        with contextlib.suppress(OSError):  # first: a full disk then has room for error.txt
            spill.remove(spill.directory(args.output))
        _failed(args.output, e, "\n".join([*trap.kept, traceback.format_exc()]), hidden)
        return None
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(trap)
        if stop_servers:
            llm.stop_all()  # a vLLM server this process started never outlives the run
        spill.remove(spill.directory(args.output))  # what select's shuffles spilled
    if trap.kept:
        write_text(errors, llm.scrub("\n".join(trap.kept), hidden))
        logger.warning("%d errors were logged and recovered from (tracebacks: %s)", len(trap.kept), errors)
    return result


def _summarise(args, method, langs, config, plan, result) -> None:
    """``OUT/report.md`` and ``OUT/run.json`` of a finished run, its outputs swapped in, and its
    summary lines."""
    from pipeline.ops import outdir, report
    from transforms.records.write import write_json

    staged = outdir.staging_dir(args.output)
    all_stats = report.write(staged, [lang.code for lang in langs], config.preset)
    for stats in all_stats:
        para = stats["paragraphs"]
        if "seeds" in stats:  # the evol method reads seed rows
            seeds = stats["seeds"]
            logger.info("%s: %d seed rows read, %d kept, %d rejected; %d records written (%s/rejects/%s)",
                        stats["lang"], seeds["read"], seeds["kept"], sum(seeds["rejected"].values()),
                        stats.get("dataset", {}).get("records", 0), args.output, stats["lang"])
            continue
        logger.info(
            "%s: %d paragraphs read, %d kept in %d records, %d rejected (%s/rejects/%s)",
            stats["lang"], para["read"], para["kept"], stats["selected_records"],
            sum(para["rejected"].values()), args.output, stats["lang"],
        )
    calls = _model_calls(result)
    run_info = {"stages": {"reused": list(plan.reused), "run": list(plan.run)}, "model_calls": calls,
                "model_copies": _model_copies(result)}
    run_info.update(method.run_info(result, args.output))
    write_json(f"{staged}/run.json", run_info)
    outdir.swap(args.output)
    for kind, n in calls.items():
        logger.info("model calls, %s: %d made, %d from the cache", kind, n["made"], n["cached"])
    logger.info("done: %s/report.md", args.output)
    summary = transient_summary(all_stats)
    if summary:
        logger.warning(summary.replace("OUT/", f"{args.output}/"))


if __name__ == "__main__":
    sys.exit(main())
