"""``--dry-run``: what a run would select, send to the models, and cost, with no model loaded.

The select stage runs for real, in this process, on each input file or its first
``cost.sample_documents`` documents: ``select_in_process``, the functions the pipeline's
``Select`` wraps in their order, as ``benchmarks/select_bench.py``'s plain loop runs them: on the
bundled sample that takes 0.1 s a language after the fastText model loads, where the same select
on Beam's FnApiRunner takes ~6 s, mostly start-up. A sampled file's counts are scaled to all the
documents the run would read of it. The model stages are arithmetic over the selected records,
each stage's as its declaration prices it (``Stage.pass_rate``, ``Stage.calls``): tokens from the
prompt files and chars-per-token figures, records from expected pass rates, GPU-hours from
per-GPU throughput figures; all of it from ``cost`` in the config (assumptions, documented in
the presets, that a user should replace with measurements of their own).
"""

from __future__ import annotations

import string
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from itertools import islice

from pipeline.config import Config, ConfigError, CostConfig, build
from transforms.languages import Language
from transforms.records.write import write_json
from transforms.select.config import SelectConfig
from transforms.sources.config import ReadConfig
from transforms.stages import Pricing, PromptChars

# the models an estimate prices, and the stages that call them
ENGINES = {"nllb": "translate, backtranslate", "comet": "translate (R_x -> R_en), qe",
           "llm": "generate, judge"}
# Compressed bytes read at a time, so that the bytes a sample took are known to a few KiB.
# A compressed file's first documents still take more than their share of it (the
# compressor's dictionary starts empty): scaled by bytes, a sample runs a few percent low
# (5,000 of 20,000 documents of an xz file: 4% low).
READ_BYTES = 1024
# A sampled file up to this size (as stored) is read on to its end to count its documents
# exactly, which takes well under a second; a larger one is scaled by the bytes read.
COUNT_BYTES = 4 * 1024 * 1024


class InputError(Exception):
    """No input file matches a language's pattern."""


@dataclass(frozen=True)
class Engine:
    """A model as the estimate sees it: throughput and price per GPU, from ``cost.engines``.
    ``gpu: null`` means the model runs on CPU (the demo): it counts no GPU-hours."""

    gpu: str | None
    input_tokens_per_s: float | None = None  # per GPU: tokens read (prompt, source, scored pair)
    output_tokens_per_s: float | None = None  # per GPU: tokens generated (None: scores only)
    usd_per_gpu_hour: float | None = None
    gpus_per_replica: int = 1  # one model server's GPUs (tensor parallel size)

    def cost(self, tokens_in: float, tokens_out: float) -> tuple[float, float]:
        """(GPU-hours, dollars) to read ``tokens_in`` and generate ``tokens_out``: per-GPU
        rates, so the replica's size changes the wall time, not the GPU-hours."""
        if self.gpu is None:
            return 0.0, 0.0
        seconds = tokens_in / self.input_tokens_per_s
        if tokens_out:
            seconds += tokens_out / self.output_tokens_per_s
        return seconds / 3600, seconds / 3600 * self.usd_per_gpu_hour


def engines(cost: CostConfig) -> dict[str, Engine]:
    """``cost.engines`` checked like the rest of the config: every model, no unknown key, and
    what a model on GPU needs: a price and its rates (comet generates nothing)."""
    if set(cost.engines) != set(ENGINES):
        raise ConfigError(f"cost.engines must name exactly {sorted(ENGINES)}; got {sorted(cost.engines)}")
    out = {name: build(Engine, cost.engines[name], f"cost.engines.{name}") for name in ENGINES}
    for name, e in out.items():
        rates = ["input_tokens_per_s"] + ([] if name == "comet" else ["output_tokens_per_s"])
        missing = [k for k in rates if not (getattr(e, k) or 0) > 0]
        missing += ["usd_per_gpu_hour"] if e.usd_per_gpu_hour is None else []
        if e.gpu is not None and missing:
            raise ConfigError(f"cost.engines.{name}: a model on {e.gpu} needs {', '.join(missing)} (> 0)")
    return out


# --- selection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What select keeps of one language's input, scaled from the documents read to the run."""

    paragraphs: float  # read
    records: float  # selected fragments
    response_chars: float  # of all selected fragments together
    note: str  # how it was measured, for the table
    sources: dict = field(default_factory=dict)  # source name -> {read, records}, scaled


def file_scale(documents: int, file_documents: float, max_documents: int | None) -> float:
    """Documents the run reads from a file (all ``file_documents``, or ``read.max_documents``)
    per document read here."""
    if not documents:
        return 1.0
    if max_documents is not None:
        file_documents = min(file_documents, max_documents)
    return file_documents / documents


def run_select(lang: Language, cfg: SelectConfig, docs: list) -> tuple[Counter, list[dict]]:
    """The pipeline's select stage on ``docs`` in one process (``select_in_process``):
    paragraphs read per file, and the records."""
    from transforms.select.stage import select_in_process

    selected = select_in_process(lang, cfg, docs)
    return selected.read, selected.records


def _read_file(
    code: str, path: str, name: str, size: int, limit: int | None, cfg: ReadConfig = ReadConfig(),
    source: str = "cc100",
):
    """The first ``limit`` documents of a file (the pipeline's reader) and how many the whole
    file holds: counted in a file of up to ``COUNT_BYTES``, else estimated by the share of its
    bytes read (see ``READ_BYTES``)."""
    from transforms.sources.cc100 import InputFile, documents

    with InputFile(path, cfg.max_line_bytes, READ_BYTES) as f:
        # counts every document; a broken file is counted, not fatal, here
        found = documents(code, name, f.lines(), replace(cfg, max_documents=None, strict_input=False), source)
        docs = list(islice(found, limit))
        bytes_read = f.position()
        if size <= COUNT_BYTES:
            total = len(docs) + sum(1 for _ in found)
        else:
            total = len(docs) * size / max(bytes_read, 1)
    return docs, total


def _match(pattern: str, lang: Language) -> list:
    from apache_beam.io.filesystems import FileSystems

    try:
        files = FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # noqa: BLE001 - any filesystem error is a bad input here, as in main
        raise InputError(f"cannot read input {pattern}: {e}") from e
    if not files:
        raise InputError(f"no input files match {pattern} (language {lang.code})")
    return files


def sample_records(lang: Language, sources, cfg: SelectConfig, documents: int,
                   first_lang: str | None = None) -> list[dict]:
    """The records select keeps of the first ``documents`` documents (rows) of each file of
    ``sources`` (``--calibrate``'s input)."""
    limit = min(documents, cfg.read.max_documents or documents)
    docs = _sample(lang, sources, cfg, limit, documents, first_lang)[0]
    return run_select(lang, cfg, docs)[1]


def _tabular_file(lang: Language, source, pattern: str, path: str, name: str, limit: int | None,
                  first_lang: str) -> tuple[list, float]:
    """A tabular file's documents for ``lang`` among its first ``limit`` rows (the pipeline's
    reader), and the scale from the rows read to all its rows."""
    from transforms.sources import inputs, tabular

    spec = inputs.spec_of(source)
    plan = inputs.TabularInput(source.name, source.kind, pattern, spec,
                               lang.code if source.per_lang_path else None,
                               tabular.value_map(spec, [lang]) if source.lang_field else {}, first_lang)
    docs, rows = [], 0
    for group, first in inputs.file_pieces(source.kind, path):
        for doc in inputs.piece_documents(plan, path, name, group, first):
            if limit is not None and rows >= limit:
                break
            rows += 1
            if doc is not None and doc.lang == lang.code:
                docs.append(doc)
    total = rows if limit is None or rows < limit else inputs.count_rows(source.kind, path)
    return docs, total / rows if rows else 1.0


def _sample(lang: Language, sources, cfg: SelectConfig, limit: int | None, row_limit: int | None,
            first_lang: str | None):
    """The documents for ``lang`` among the first ``limit`` of each CC-100 file and the first
    ``row_limit`` rows of each tabular file (``read.max_documents`` applies to CC-100 files
    only); per (source, file) the scale to what the run reads of it; the number of files."""
    from transforms.sources.cc100 import relative_name, template_dir
    from transforms.sources.inputs import patterns

    docs, scale, files = [], {}, 0
    for source in sources:
        pattern = patterns(source, [lang]).popitem()[1]
        found = _match(pattern, lang) if not source.tabular else _match_any(pattern)
        files += len(found)
        for meta in found:
            name = relative_name(meta.path, template_dir(pattern))
            if source.tabular:
                file_docs, factor = _tabular_file(lang, source, pattern, meta.path, name, row_limit,
                                                  first_lang or lang.code)
            else:
                file_docs, total = _read_file(lang.code, meta.path, name, meta.size_in_bytes, limit, cfg.read,
                                              source.name)
                factor = file_scale(len(file_docs), total, cfg.read.max_documents)
            scale[source.name, name] = factor
            docs += file_docs
    return docs, scale, files


def select_sources(lang: Language, sources, cfg: SelectConfig, sample_documents: int | None,
                   first_lang: str | None = None) -> Selection:
    """Run select on every source of ``lang`` together (dedup across them, as the pipeline
    does), on each file or its first documents (rows), and scale the counts of each file to
    what the run would read of it; ``selection.sources`` holds each source's share."""
    limits = [n for n in (sample_documents, cfg.read.max_documents) if n is not None]
    limit = min(limits) if limits else None
    docs, scale, files = _sample(lang, sources, cfg, limit, sample_documents, first_lang)
    read, records = run_select(lang, cfg, docs)
    chars, counts = Counter(), Counter()
    for record in records:
        key = record["source"]["name"], record["source"]["file"]
        chars[key] += len(record["response"])
        counts[key] += 1
    by_source = {
        source.name: {
            "read": round(sum(n * scale[k] for k, n in read.items() if k[0] == source.name), 1),
            "records": round(sum(n * scale[k] for k, n in counts.items() if k[0] == source.name), 1),
        }
        for source in sources
    }
    return Selection(
        paragraphs=sum(n * scale[k] for k, n in read.items()),
        records=sum(n * scale[k] for k, n in counts.items()),
        response_chars=sum(n * scale[k] for k, n in chars.items()),
        note=_note(len(docs), files, limit, sum(scale[doc.source, doc.file] for doc in docs)),
        sources=by_source,
    )


def _match_any(pattern: str) -> list:
    """A tabular source's files: a language may have none (its rows are elsewhere)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception as e:  # noqa: BLE001 - any filesystem error is a bad input here, as in main
        raise InputError(f"cannot read input {pattern}: {e}") from e


def _note(documents: int, files: int, limit: int | None, estimated: float) -> str:
    """How the selection was measured: on everything the run reads, or scaled from a sample."""
    if round(estimated) == documents:
        return f"select run on all {documents:,} documents the run reads ({files} file(s))"
    return (f"select run on the first {limit:,} documents of each of {files} file(s) "
            f"({documents:,} in all), counts scaled by input size to ~{estimated:,.0f} documents")


# --- the model stages -----------------------------------------------------------------------


def prompt_chars(template: str) -> PromptChars:
    """The fixed text of a ``str.format`` template, split at its first field."""
    shared, own, seen_field = 0, 0, False
    for literal, field_name, _, _ in string.Formatter().parse(template):
        if seen_field:
            own += len(literal)
        else:
            shared += len(literal)
        seen_field = seen_field or field_name is not None
    return PromptChars(shared, own)


def message_chars(prompt) -> PromptChars:
    """A chat prompt's fixed text: its system message (the task or rubric, the same in every
    request) is shared; its user message splits at its first field."""
    user = prompt_chars(prompt.template)
    system = len(prompt.system.format().strip()) if prompt.system else 0
    return PromptChars(system + user.shared, user.own)


def prompt_mean(weights: dict[str, float]) -> PromptChars:
    """The fixed text of the prompts named in ``weights``, their mean by weight (generate's
    task prompts; one prompt's own)."""
    import prompts

    total = sum(weights.values())
    chars = {name: message_chars(prompts.load(name)) for name in weights}
    return PromptChars(sum(chars[n].shared * w for n, w in weights.items()) / total,
                       sum(chars[n].own * w for n, w in weights.items()) / total)


@dataclass(frozen=True)
class StageEstimate:
    """One stage's expected work for one language: expected values, so fractional."""

    stage: str
    records_in: float  # select: paragraphs read
    records_out: float
    tokens_in: float = 0.0  # sent to the stage's models
    tokens_out: float = 0.0  # generated by them
    gpu_hours: float = 0.0
    usd: float = 0.0


def pricing(config: Config, response_chars: float, prompt=prompt_mean) -> Pricing:
    """Tokens per record of R_x, R_en, I_en and I_x for records of ``response_chars``
    characters on average, from the language's ``cost`` figures."""
    cost = config.cost
    return Pricing(
        config,
        src=response_chars / cost.chars_per_token,
        en=response_chars * cost.english_chars_ratio / cost.english_chars_per_token,
        instr_en=cost.instruction_en_chars / cost.english_chars_per_token,
        instr_x=cost.instruction_en_chars / cost.english_chars_ratio / cost.chars_per_token,
        prompt=prompt,
    )


def estimate(selection: Selection, config: Config, engine: dict[str, Engine], until: str = "qe",
             prompt=prompt_mean, method=None) -> list[StageEstimate]:
    """Per stage up to ``until``: records in and out, tokens, GPU-hours and dollars, for one
    language whose ``config`` (``config.for_lang``) holds its cost figures. Each stage works
    on the records the previous one kept, of the selection's mean length; what a stage calls
    and keeps is its declaration's ``calls`` and ``pass_rate`` (the natural method's stages by
    default)."""
    from pipeline.methods import METHODS

    method = method or METHODS["natural"]
    n = selection.records
    mean_chars = selection.response_chars / n if n else 0.0
    per_record = pricing(config, mean_chars, prompt)
    select, *later = method.upto(until)
    out = [StageEstimate(select.name, selection.paragraphs, n)]
    for stage in later:
        kept, stage_work = stage.pass_rate(config), stage.calls(per_record)
        costs = [engine[c.engine].cost(n * c.computed, n * c.generated) for c in stage_work]
        out.append(StageEstimate(
            stage.name, n, n * kept,
            tokens_in=n * sum(c.sent for c in stage_work),
            tokens_out=n * sum(c.generated for c in stage_work),
            gpu_hours=sum(hours for hours, _ in costs),
            usd=sum(usd for _, usd in costs),
        ))
        n *= kept
    return out


def usd_per_million(stages: list[StageEstimate]) -> float:
    """Dollars per million selected fragments: what the launch docs quote."""
    selected = sum(s.records_out for s in stages if s.stage == "select")
    return sum(s.usd for s in stages) / selected * 1e6 if selected else 0.0


# --- output ---------------------------------------------------------------------------------

_COLUMNS = ("lang", "stage", "records in", "records out", "tokens in", "tokens out", "GPU-hours", "USD")


def _row(code: str, s: StageEstimate) -> tuple[str, ...]:
    if s.stage == "select":  # no model: the counts are paragraphs read and fragments made
        return code, s.stage, _int(s.records_in), _int(s.records_out), "-", "-", "-", "-"
    return (code, s.stage, _int(s.records_in), _int(s.records_out), _int(s.tokens_in),
            _int(s.tokens_out), f"{s.gpu_hours:,.3f}", f"{s.usd:,.2f}")


def _total(results: dict[str, tuple[Selection, list[StageEstimate]]]) -> tuple[str, ...]:
    """Selected fragments in, final records out, and the sums of tokens, hours and dollars."""
    everything = [s for _, stages in results.values() for s in stages]
    return ("total", "", _int(sum(stages[0].records_out for _, stages in results.values())),
            _int(sum(stages[-1].records_out for _, stages in results.values())),
            _int(sum(s.tokens_in for s in everything)), _int(sum(s.tokens_out for s in everything)),
            f"{sum(s.gpu_hours for s in everything):,.3f}", f"{sum(s.usd for s in everything):,.2f}")


def figures(cost: CostConfig) -> list[str]:
    """The figures of ``cost`` an estimate uses, named as in config (``judge_pass_rate``,
    ``engines.llm.output_tokens_per_s``)."""
    names = ["chars_per_token", "english_chars_per_token", "english_chars_ratio", "instruction_en_chars",
             "judge_output_tokens", "qe_response_pass_rate", "generate_pass_rate", "judge_pass_rate",
             "qe_instruction_pass_rate"]
    for name in ENGINES:
        names += [f"engines.{name}.{k}" for k in ("input_tokens_per_s", "output_tokens_per_s", "usd_per_gpu_hour")
                  if cost.engines[name].get(k) is not None]
    return names


def provenance(cost: CostConfig) -> list[str]:
    """Which figures were measured (``cost.measured``, written by ``--calibrate``), and which
    are still assumptions, as lines for the table."""
    assumed = [f for f in figures(cost) if f not in cost.measured]
    if not cost.measured:
        return ["Pass rates, chars per token and throughputs are assumptions from the preset's "
                "`cost` section: replace them with your own measurements."]
    by_where: dict[str, list[str]] = {}
    for name, how in cost.measured.items():
        by_where.setdefault(how.split(": ", 1)[0], []).append(name)
    lines = [f"Measured ({where}): {', '.join(names)}." for where, names in by_where.items()]
    if assumed:
        lines.append(f"Assumptions (not measured): {', '.join(assumed)}.")
    return lines


def table(preset: str, results: dict[str, tuple[Selection, list[StageEstimate]]],
          engine: dict[str, Engine], cost: CostConfig | None = None) -> str:
    """The estimate as a fixed-width table, with how each language's selection was measured
    above it and where the figures come from below it."""
    rows = [_COLUMNS, *(_row(code, s) for code, (_, stages) in results.items() for s in stages),
            _total(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    rule = "  ".join("-" * w for w in widths)
    lines = [f"dry run, preset {preset}: expected records, tokens, GPU-hours and cost per stage"]
    for code, (selection, _) in results.items():
        lines.append(f"  {code}: {selection.note}")
        if len(selection.sources) > 1:
            lines += [f"    {name}: ~{_int(c['read'])} paragraphs/rows read, ~{_int(c['records'])} fragments"
                      for name, c in selection.sources.items()]
    lines.append("")
    for i, row in enumerate(rows):
        if i == len(rows) - 1:
            lines.append(rule)
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if i == 0:
            lines.append(rule)
    lines.append("")
    lines.append("select: records in = paragraphs read, out = fragments; total: selected fragments "
                 "in, final records out")
    everything = [s for _, stages in results.values() for s in stages]
    if any(e.gpu for e in engine.values()):
        lines.append(f"cost per 1M selected fragments: ${usd_per_million(everything):,.0f}")
    for name, e in engine.items():
        where = "CPU (no GPU-hours)" if e.gpu is None else (
            f"{e.gpus_per_replica} x {e.gpu} per replica, ${e.usd_per_gpu_hour}/GPU-hour")
        lines.append(f"{name} ({ENGINES[name]}): {where}")
    lines += provenance(cost or CostConfig())
    return "\n".join(lines)


def _int(x: float) -> str:
    return f"{round(x):,}"


def _rounded(data: dict) -> dict:
    """Expected values to 6 significant digits: they are estimates, not counts."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in data.items()}


def document(preset: str, results: dict[str, tuple[Selection, list[StageEstimate]]],
             engine: dict[str, Engine], costs: dict[str, CostConfig],
             config_cost: CostConfig | None = None) -> dict:
    """The estimate as JSON: per language its selection, stages and assumptions; the total;
    which figures were measured (by ``--calibrate``) and which assumed."""
    config_cost = config_cost or CostConfig()
    everything = [s for _, stages in results.values() for s in stages]
    return {
        "preset": preset,
        "languages": {
            code: {"selection": _rounded(asdict(selection)),
                   "stages": [_rounded(asdict(s)) for s in stages],
                   "usd_per_million_fragments": round(usd_per_million(stages), 2),
                   "assumptions": {k: v for k, v in asdict(costs[code]).items() if k not in ("engines", "measured")}}
            for code, (selection, stages) in results.items()
        },
        "engines": {name: asdict(e) for name, e in engine.items()},
        "measured": dict(config_cost.measured),
        "assumed": [f for f in figures(config_cost) if f not in config_cost.measured],
        "total": _rounded({
            "selected_records": sum(stages[0].records_out for _, stages in results.values()),
            "final_records": sum(stages[-1].records_out for _, stages in results.values()),
            "gpu_hours": sum(s.gpu_hours for s in everything),
            "usd": sum(s.usd for s in everything),
            "usd_per_million_fragments": usd_per_million(everything),
        }),
    }


def run(args, langs: list[Language], config: Config) -> int:
    """``--dry-run``: select on the input (or a sample), estimate the model stages up to
    ``--until``, print the table and write ``OUT/dryrun.json``."""
    from pipeline.methods import METHODS

    from pipeline.ops import tranches

    engine = engines(config.cost)
    method = METHODS[args.method].for_config(config)  # with --target, the draw after select
    results, costs, targets = {}, {}, {}
    for lang in langs:
        lang_config = config.for_lang(lang.code)
        selection = select_sources(lang, config.sources, lang_config.select, lang_config.cost.sample_documents,
                                   langs[0].code)
        if lang_config.target.records is not None:  # priced on the draw the target takes
            selection, stages, targets[lang.code] = tranches.price(selection, lang_config, engine, args.until,
                                                                   method, estimate)
        else:
            stages = estimate(selection, lang_config, engine, args.until, method=method)
        results[lang.code] = (selection, stages)
        costs[lang.code] = lang_config.cost
    print(table(config.preset, results, engine, config.cost))
    path = f"{args.output}/dryrun.json"
    doc = document(config.preset, results, engine, costs, config.cost)
    for code, info in targets.items():
        doc["languages"][code]["target"] = info
    write_json(path, doc)
    print(f"\nwritten: {path}")
    return 0
