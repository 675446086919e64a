"""Stage checkpoints: what a stage kept and rejected, as Parquet, with a marker written last.

``OUT/stages/{stage}/{lang}/`` holds ``records-SSSSS-of-NNNNN.parquet`` and
``rejects-SSSSS-of-NNNNN.parquet`` (columns ``id``, ``lang``, ``json``: records change shape
from stage to stage, so each row keeps its record as JSON; Parquet adds compression and
splittable reads) and ``_COMPLETE.json``: the stage's fingerprint (its config and everything
upstream), its stats pairs and its file list. Each bundle writes its rows where they are made
(a temporary file per language, as the JSONL writers do: no shuffle of the rows); once all are
written they are renamed, and the marker is written last, so a stage cut short has no marker
and is redone.

Transient errors (``llm_error``: the server failed after its retries) are not final: a marker
whose stats hold some does not count as complete for reuse (``pipeline/ops/resume.py``), and the
re-run sends those records again (the model-call cache answers the others). Past the error
budget (``max_transient_error_share`` of the stage's records) the marker is not written at
all: the run fails, with a message that says why: the first distinct errors of the failed
requests (``detail.error``: the exception, its cause, the URL without credentials), how many
records each ended, and the log of the vLLM server that served them (``detail.server_log``).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.models.llm import LLM_ERROR
from transforms.records import counts
from transforms.records.shapes import StageOutput, parts
from transforms.records.write import (
    TEMP_PREFIX,
    BundleFiles,
    commit,
    temp_path,
    to_json,
    write_json,
    writing,
)

MARKER = "_COMPLETE.json"
KINDS = ("records", "rejects")
ROWS_PER_GROUP = 10_000  # Parquet row group: bounds a writer's memory
TRANSIENT_REASONS = frozenset({LLM_ERROR})  # rejects a re-run retries


class ErrorBudgetExceeded(RuntimeError):
    """More of a stage's records ended in transient errors than its error budget allows."""


def transient_errors(stage: str, stats) -> dict[str, int]:
    """reason -> count of the transient rejects among a stage's (name, count) stats pairs."""
    found = {}
    for name, n in stats:
        count = counts.stage_count(name)
        if n and count and count.stage == stage and count.kind == "rejected" and count.reason in TRANSIENT_REASONS:
            found[count.reason] = n
    return found


def check_error_budget(stage: str, lang: str, stats, max_share: float | None) -> None:
    """Raise ``ErrorBudgetExceeded`` when the transient rejects of ``stage`` for ``lang`` are
    over ``max_share`` of its records (None: no limit)."""
    stats = dict(stats)
    errors = transient_errors(stage, stats.items())
    failed, total = sum(errors.values()), stats.get(counts.stage(stage, "in"), 0)
    if max_share is not None and total and failed / total > max_share:
        raise ErrorBudgetExceeded(_over_budget(stage, lang, errors, total, max_share))


FIRST_ERRORS = 2  # distinct errors an over-budget message quotes


def _over_budget(stage: str, lang: str, errors: dict[str, int], total: int, max_share: float,
                 at_least: bool = False, causes: dict[str, int] | None = None, logs: tuple[str, ...] = ()) -> str:
    failed = sum(errors.values())
    why = ""
    if causes:  # error text -> records, in the order first seen
        quoted = [f"{n} x {text[:240]}" for text, n in list(causes.items())[:FIRST_ERRORS]]
        others = sum(list(causes.values())[FIRST_ERRORS:])
        why = f" (first errors: {'; '.join(quoted)}{f'; {others} other' if others else ''})"
    where = f"; vLLM server log: {', '.join(logs)}" if logs else ""
    return (
        f"{stage} ({lang}): {'at least ' if at_least else ''}{failed} of {total} records "
        f"({failed / total:.1%}) ended in {', '.join(sorted(errors))}{why}, over the error budget of "
        f"{max_share:.0%} (max_transient_error_share); the stage is not marked complete{where}"
    )


class _WatchErrorBudget(beam.DoFn):
    """Fails the run as soon as the transient rejects seen here are over the error budget of
    the language's whole input (``totals``): an outage stops the run after a batch instead of
    after every record's retries and timeouts. The counts are this worker's, at most the
    stage's: it fails no run that the marker's check would let pass."""

    def __init__(self, stage: str, max_share: float):
        self.stage, self.max_share = stage, max_share

    def setup(self):
        self.errors: dict[str, dict[str, int]] = {}
        self.causes: dict[str, dict[str, int]] = {}  # lang -> error text -> records
        self.logs: dict[str, dict[str, None]] = {}  # lang -> server logs named, in order

    def process(self, reject: dict, totals: dict[str, int]):
        if reject["reason"] not in TRANSIENT_REASONS:
            return
        lang, reason = reject["lang"], reject["reason"]
        errors = self.errors.setdefault(lang, {})
        errors[reason] = errors.get(reason, 0) + 1
        detail = reject.get("detail") or {}
        causes = self.causes.setdefault(lang, {})
        cause = str(detail.get("error") or "no detail")
        causes[cause] = causes.get(cause, 0) + 1
        if detail.get("server_log"):
            self.logs.setdefault(lang, {})[detail["server_log"]] = None
        total = totals.get(lang, 0)
        if total and sum(errors.values()) > self.max_share * total:
            raise ErrorBudgetExceeded(_over_budget(self.stage, lang, errors, total, self.max_share, at_least=True,
                                                   causes=causes, logs=tuple(self.logs.get(lang, ()))))


def stage_dir(output: str, stage: str, lang: str) -> str:
    return f"{output}/stages/{stage}/{lang}"


def read_marker(output: str, stage: str, lang: str) -> dict | None:
    path = f"{stage_dir(output, stage, lang)}/{MARKER}"
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def clear(output: str, stage: str, lang: str) -> None:
    """Remove a stage's files for ``lang`` (marker first), before the stage runs again."""
    directory = stage_dir(output, stage, lang)
    marker = f"{directory}/{MARKER}"
    if FileSystems.exists(marker):
        FileSystems.delete([marker])
    matches = FileSystems.match([f"{directory}/*.parquet", f"{directory}/{TEMP_PREFIX}*"])
    old = sorted({m.path for match in matches for m in match.metadata_list})  # may match both
    if old:
        FileSystems.delete(old)


def _schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("lang", pa.string()), ("json", pa.string())])


def write_rows(path: str, lang: str, rows: list[tuple[str, str]]) -> None:
    """(id, JSON line) rows of ``lang`` -> one Parquet file at ``path``, in row groups of
    ``ROWS_PER_GROUP``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()  # whole, then written once: any Beam filesystem takes bytes
    with pq.ParquetWriter(buffer, _schema(), compression="zstd") as writer:
        for start in range(0, len(rows), ROWS_PER_GROUP):
            ids, texts = zip(*rows[start:start + ROWS_PER_GROUP])
            writer.write_table(pa.table({"id": ids, "lang": [lang] * len(ids), "json": texts}, schema=_schema()))
    with writing(path), FileSystems.create(path) as f:
        f.write(buffer.getvalue().to_pybytes())


class _SaveRows(BundleFiles):
    """Records (or rejects) of a stage -> (lang, JSON line) for ``OUT/``, each serialised once.
    The rows also go to a temporary Parquet file per language a bundle holds in the stage's
    checkpoint, emitted as (lang, (kind, path, rows)) on ``files`` once written;
    ``_write_marker`` renames them."""

    files_tag = "files"

    def __init__(self, output: str, stage: str, kind: str):
        self.output, self.stage, self.kind = output, stage, kind

    def process(self, record: dict):
        lang, line = record["lang"], to_json(record)
        yield lang, line
        yield from self.hold(lang, (record["id"], line), len(line))

    def write(self, lang: str, rows: list[tuple[str, str]]):
        path = temp_path(stage_dir(self.output, self.stage, lang), ".parquet")
        write_rows(path, lang, rows)
        return lang, (self.kind, path, len(rows))


def _write_marker(element, output: str, stage: str, fingerprints: dict[str, str],
                  max_transient_share: float | None = None) -> str:
    """(lang, {files: (kind, temporary path, rows), stats}) -> the language's files renamed to
    ``{kind}-SSSSS-of-NNNNN.parquet``, then its marker; fails instead past the error budget."""
    lang, grouped = element
    check_error_budget(stage, lang, grouped["stats"], max_transient_share)
    directory = stage_dir(output, stage, lang)
    files = sorted(grouped["files"])
    temps, names = [], []
    for kind in KINDS:
        paths = [path for k, path, _ in files if k == kind]
        temps += paths
        names += [f"{kind}-{i:05d}-of-{len(paths):05d}.parquet" for i in range(len(paths))]
    commit(directory, temps, [f"{directory}/{name}" for name in names])
    marker = {
        "stage": stage,
        "lang": lang,
        "fingerprint": fingerprints[lang],
        "counts": {kind: sum(n for k, _, n in files if k == kind) for kind in KINDS},
        "files": names,
        "stats": sorted(grouped["stats"]),
    }
    path = f"{directory}/{MARKER}"
    write_json(path, marker)
    return path


class Saved(NamedTuple):
    """What ``SaveStage`` gives back: the paths of the markers it wrote, and the stage's records
    and rejects as the ``(lang, JSON line)`` pairs it saved, for ``OUT/`` (each serialised once;
    the rejects a tuple, a PCollection for each of the stage's ``parts``)."""

    markers: Any
    records: Any
    rejects: Any


class SaveStage(beam.PTransform):
    """A stage's output -> its checkpoint for every language in ``fingerprints``; the run
    fails instead where a language's transient errors are over ``max_transient_share`` of the
    stage's records (as soon as they are, given the stage's ``inputs``)."""

    def __init__(self, output: str, stage: str, fingerprints: dict[str, str],
                 max_transient_share: float | None = None, inputs=None):
        super().__init__()
        self.output, self.stage, self.fingerprints = output, stage, fingerprints
        self.max_transient_share, self.inputs = max_transient_share, inputs

    def expand(self, stage_output: StageOutput) -> Saved:
        def save(rows, kind: str, label: str):
            return rows | label >> beam.ParDo(_SaveRows(self.output, self.stage, kind)).with_outputs(
                "files", main="lines")

        rejects = parts(stage_output.rejects)  # each part saved where it is made: no Flatten
        records = save(stage_output.records, "records", "SaveRecords")
        saved_rejects = [save(part, "rejects", f"SaveRejects{i or ''}") for i, part in enumerate(rejects)]
        files = [records.files, *(s.files for s in saved_rejects)] | "Files" >> beam.Flatten()
        stats = (
            stage_output.stats
            | "Sum" >> beam.CombinePerKey(sum)
            | "ByLang" >> beam.MapTuple(lambda key, n: (key[0], (key[1], n)))
        )
        if self.inputs is not None and self.max_transient_share is not None:
            totals = self.inputs | "Langs" >> beam.Map(lambda r: r["lang"]) | "Count" >> beam.combiners.Count.PerElement()
            rejects | "AllRejects" >> beam.Flatten() | "ErrorBudget" >> beam.ParDo(
                _WatchErrorBudget(self.stage, self.max_transient_share), beam.pvalue.AsDict(totals)
            )
        every_lang = files.pipeline | "EveryLang" >> beam.Create([(lang, None) for lang in self.fingerprints], reshuffle=False)
        markers = (
            {"files": files, "stats": stats, "lang": every_lang}
            | "Join" >> beam.CoGroupByKey()
            | "Marker" >> beam.Map(
                _write_marker, self.output, self.stage, self.fingerprints, self.max_transient_share
            )
        )
        return Saved(markers, records.lines, tuple(s.lines for s in saved_rejects))


def _read_rows(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with FileSystems.open(path) as f:
        table = pq.read_table(pa.BufferReader(f.read()), columns=["json"])
    for text in table.column("json").to_pylist():
        yield json.loads(text)


class LoadStage(beam.PTransform):
    """A complete checkpoint -> the StageOutput it saved: rejects and stats, and the kept
    records when ``with_records`` (only the last reused stage's records feed the next)."""

    def __init__(self, output: str, stage: str, markers: dict[str, dict], with_records: bool):
        super().__init__()
        self.output, self.stage, self.markers, self.with_records = output, stage, markers, with_records

    def _files(self, kind: str) -> list[str]:
        return [
            f"{stage_dir(self.output, self.stage, lang)}/{name}"
            for lang, marker in self.markers.items()
            for name in marker["files"]
            if name.startswith(f"{kind}-")
        ]

    def _read(self, p, kind: str):
        return (
            p
            | f"{kind.title()}Files" >> beam.Create(self._files(kind))
            | f"Spread{kind.title()}" >> beam.Reshuffle()
            | f"Read{kind.title()}" >> beam.FlatMap(_read_rows)
        )

    def expand(self, p):
        stats = [((lang, name), n) for lang, marker in self.markers.items() for name, n in marker["stats"]]
        records = self._read(p, "records") if self.with_records else None
        return StageOutput(records, self._read(p, "rejects"), p | "Stats" >> beam.Create(stats))
