"""Write a language's records, rejects and stats in the layout of CONTRACT.md."""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import window

from transforms.records import counts
from transforms.records.shapes import SCORE_SUM_SCALE, SCORES, parts


class WriteError(OSError):
    """A file that could not be written (a full disk, a quota, a file size limit, a read-only
    filesystem): one line naming the cause and the file, ``no space left on device writing PATH``.
    Built as ``OSError`` is (errno, strerror, path), so it pickles from a worker to the runner."""

    def __str__(self) -> str:
        reason = self.strerror or "write error"
        return f"{reason[:1].lower()}{reason[1:]} writing {self.filename}"


@contextlib.contextmanager
def writing(path: str):
    """Turns an ``OSError`` raised while writing ``path`` (opening, writing, closing, renaming)
    into a ``WriteError`` that names it."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(e.errno, e.strerror or str(e), path) from e


def to_json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


def json_line(record: dict) -> tuple[str, str]:
    """A record or reject as ``WritePerLang`` takes it: (its language, its JSON line)."""
    return record["lang"], to_json(record)


LENGTH_FIELDS = ("instruction", "response")  # the data's own: I_x and R_x


def dataset_stats(record: dict, extra=None) -> list[tuple[tuple[str, str], int]]:
    """((lang, name), n) pairs of one final record: its lengths and its task, and ``extra(record)``'s
    (name, n) pairs where given."""
    lang = record["lang"]
    pairs = [((lang, counts.DATASET_RECORDS), 1)]
    if "source" in record:  # a natural-method record; made before sources existed: cc100's
        pairs.append(((lang, counts.source(record["source"].get("name", "cc100"), "records")), 1))
    if extra is not None:
        pairs += [((lang, name), n) for name, n in extra(record)]
    for field in LENGTH_FIELDS:
        if field in record:
            n = len(record[field])
            name = counts.dataset(f"{field}_chars")
            pairs += [((lang, f"{name}.count"), 1), ((lang, f"{name}.sum"), n), ((lang, f"{name}.sumsq"), n * n)]
    if "task" in record:
        pairs.append(((lang, counts.dataset(f"tasks.{record['task']}")), 1))
    return pairs


class _TallyDataset(beam.DoFn):
    """Sums ``dataset_stats`` per bundle and emits the sums at its end: a few pairs a bundle,
    not five or more elements a record."""

    def __init__(self, extra=None):
        self.extra = extra

    def start_bundle(self):
        self.tally = Counter()

    def process(self, record: dict):
        for key, n in dataset_stats(record, self.extra):
            self.tally[key] += n

    def finish_bundle(self):
        for pair in self.tally.items():
            yield window.GlobalWindows.windowed_value_at_end_of_window(pair)


class DatasetStats(beam.PTransform):
    """The records written to ``OUT/data`` -> ((lang, name), n) pairs (``dataset.*``) for
    ``WriteStats``: the paper's Table 2 (lengths, task mix), summed per bundle and key here
    already so few pairs travel on. Every language in ``langs`` gets ``dataset.records``, 0 if
    none is left, so the stats say so."""

    def __init__(self, langs: list[str], extra=None):
        super().__init__()
        self.langs = langs
        self.extra = extra  # a method's own (name, n) pairs of a record (evol: the task/operation mix)

    def expand(self, records):
        zeros = records.pipeline | "EveryLang" >> beam.Create(
            [((lang, counts.DATASET_RECORDS), 0) for lang in self.langs], reshuffle=False
        )
        pairs = records | "Pairs" >> beam.ParDo(_TallyDataset(self.extra))
        return (pairs, zeros) | "All" >> beam.Flatten() | "Sum" >> beam.CombinePerKey(sum)


def mean_std(total: int, sumsq: int, count: int) -> dict[str, float]:
    """Mean and (population) standard deviation from a sum, a sum of squares and a count."""
    mean = total / count if count else 0.0
    std = math.sqrt(max(0.0, sumsq / count - mean**2)) if count else 0.0
    return {"mean": round(mean, 1), "std": round(std, 1)}


def _stage_counts(sums: dict[str, int], order: Sequence[str] = ()) -> dict[str, dict]:
    stages: dict[str, dict] = {}
    for key, n in sorted(sums.items()):
        if (count := counts.stage_count(key)) is not None:
            entry = stages.setdefault(count.stage, {"in": 0, "out": 0, "rejected": {}})
            if count.reason is not None:  # rejected, or flagged: failed a check that is switched off
                entry.setdefault(count.kind, {})[count.reason] = n
            else:
                entry[count.kind] = n
    # in the method's order (``order``: its stage names), any other after them
    ordered = [s for s in order if s in stages] + sorted(s for s in stages if s not in order)
    return {stage: stages[stage] for stage in ordered}


def score_summary(sums: dict[str, int], config: dict) -> dict[str, dict]:
    """Per score a stage produced: how many records it scored, the mean, the threshold from
    ``config`` and the histogram over every bin (taken before the threshold applied)."""
    summary = {}
    for name, scale in SCORES.items():
        hist = {int(k): v for k, v in counts.prefixed(sums, counts.score(name, "hist.")).items()}
        invalid = sums.get(counts.score(name, "invalid"), 0)
        if not hist and not invalid:
            continue
        count = sum(hist.values())
        total = sums.get(counts.score(name, f"sum_x{SCORE_SUM_SCALE}"), 0) / SCORE_SUM_SCALE
        section, key = scale.threshold
        summary[name] = {
            "count": count,
            "mean": round(total / count, 4) if count else None,
            "threshold": config.get(section, {}).get(key),
            "hist": {scale.label(b): hist.get(b, 0) for b in range(scale.top + 1)},
        }
        if invalid:
            summary[name]["invalid"] = invalid
    return summary


def dataset_summary(sums: dict[str, int]) -> dict | None:
    """Table 2 of the paper for the records written to ``OUT/data`` (from ``DatasetStats``):
    instruction and response lengths in characters and the task mix; None if not counted."""
    if counts.DATASET_RECORDS not in sums:
        return None
    summary: dict = {"records": sums[counts.DATASET_RECORDS]}
    for field in LENGTH_FIELDS:
        chars = counts.prefixed(sums, counts.dataset(f"{field}_chars."))
        if chars.get("count"):
            summary[f"{field}_chars"] = mean_std(chars["sum"], chars["sumsq"], chars["count"])
    tasks = counts.prefixed(sums, counts.dataset("tasks."))
    if tasks:
        summary["tasks"] = tasks
    return summary


def source_summary(sums: dict[str, int]) -> dict[str, dict]:
    """Per source: rows or paragraphs ``read``, ``kept`` and ``rejected`` by reason in select
    (``read = kept + sum(rejected)``), records ``selected``, and final ``records`` in ``data/``."""
    out: dict[str, dict] = {}
    for key, n in sorted(sums.items()):
        if (count := counts.source_count(key)) is not None:
            name, rest = count
            entry = out.setdefault(name, {"read": 0, "kept": 0, "rejected": {}, "selected": 0, "records": 0})
            if rest.startswith("rejected."):
                entry["rejected"][rest[len("rejected."):]] = n
            else:
                entry[rest] = n
    return out


def evol_summary(sums: dict[str, int]) -> dict | None:
    """The evol method's kept conversations: tasks, task/operation mix, dialogue structures,
    user turns per conversation, characters per message by role and per turn; None if none."""
    if not counts.any_of(sums, counts.EVOL):
        return None
    mix = counts.prefixed(sums, counts.EVOL)
    chars = {}
    for role in ("user", "assistant"):
        count = mix.get(f"chars.{role}.count", 0)
        chars[role] = round(mix.get(f"chars.{role}.sum", 0) / count, 1) if count else None
    per_turn: dict[str, dict] = {}
    for key, count in counts.prefixed(mix, "turn_chars.").items():
        turn, role, kind = key.split(".")
        if kind == "count" and count:
            mean = mix[f"turn_chars.{turn}.{role}.sum"] / count
            per_turn.setdefault(turn, {})[role] = {"messages": count, "mean_chars": round(mean, 1)}
    return {
        "tasks": counts.prefixed(mix, "tasks."),
        "operations": counts.prefixed(mix, "operations."),
        "structures": counts.prefixed(mix, "structures."),
        "turns": {int(k): v for k, v in counts.prefixed(mix, "turns.").items()},
        "mean_chars": chars,
        "turn_chars": dict(sorted(per_turn.items(), key=lambda kv: int(kv[0]))),
    }


def build_stats(lang: str, sums: dict[str, int], config: dict, order: Sequence[str] = ()) -> dict:
    """The stats document of one language from summed (name, count) pairs; ``order``: the
    method's stage names, the order its stages' counts are listed in."""
    records = sums.get(counts.SELECTED_RECORDS, 0)
    lengths_of = counts.prefixed(sums, counts.RESPONSE_CHARS)
    histogram = {int(k): v for k, v in counts.prefixed(lengths_of, "hist.").items()}
    lengths = mean_std(lengths_of.get("sum", 0), lengths_of.get("sumsq", 0), records)
    document = {
        "lang": lang,
        "paragraphs": {
            "read": sums.get(counts.PARAGRAPHS_READ, 0),
            "kept": sums.get(counts.PARAGRAPHS_KEPT, 0),
            "rejected": counts.prefixed(sums, counts.PARAGRAPHS_REJECTED),
        },
        "selected_records": records,
        "sources": source_summary(sums),
        "stages": _stage_counts(sums, order),
        "lengths": {
            "response_chars": {
                **lengths,
                "histogram": {f">={k}": histogram[k] for k in sorted(histogram)},
            }
        },
    }
    scores = score_summary(sums, config)
    if scores:
        document["scores"] = scores
    dataset = dataset_summary(sums)
    if dataset:
        document["dataset"] = dataset
    if counts.any_of(sums, counts.SEEDS):  # the evol method counts seed rows
        document["seeds"] = {"read": sums.get(counts.SEEDS_READ, 0), "kept": sums.get(counts.SEEDS_KEPT, 0),
                             "rejected": counts.prefixed(sums, counts.SEEDS_REJECTED)}
    conversations = evol_summary(sums)
    if conversations:
        document["evol"] = conversations
    return {**document, "config": config}


def write_text(path: str, text: str) -> None:
    """``text`` as UTF-8 at ``path``, on any Beam filesystem (``WriteError`` if it cannot be)."""
    with writing(path), FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path: str, document: dict) -> None:
    """``document`` as indented JSON at ``path``, on any Beam filesystem."""
    write_text(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _write_lang_stats(element, output: str, configs: dict[str, dict], order: Sequence[str]) -> str:
    lang, pairs = element
    path = f"{output}/stats/{lang}.json"
    write_json(path, build_stats(lang, dict(pairs), configs[lang], order))
    return path


class WriteStats(beam.PTransform):
    """((lang, name), count) pairs -> ``{output}/stats/{lang}.json`` for every language in
    ``configs`` (written even when all its counts are 0); ``order``: the method's stage names."""

    def __init__(self, output: str, configs: dict[str, dict], order: Sequence[str] = ()):
        super().__init__()
        self.output, self.configs, self.order = output, configs, tuple(order)

    def expand(self, pairs):
        every_lang = pairs.pipeline | "EveryLang" >> beam.Create(
            [((lang, counts.PARAGRAPHS_READ), 0) for lang in self.configs], reshuffle=False
        )
        return (
            (pairs, every_lang)
            | "All" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "ByLang" >> beam.MapTuple(lambda key, n: (key[0], (key[1], n)))
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write_lang_stats, self.output, self.configs, self.order)
        )


# A writer's lines held per bundle before they go to a file (characters): bounds its memory.
FLUSH_CHARS = 8 << 20
TEMP_PREFIX = ".tmp-"  # a file being written; not matched by part-*


def part_name(i: int, n: int) -> str:
    return f"part-{i:05d}-of-{n:05d}.jsonl"


def temp_path(directory: str, suffix: str) -> str:
    """A new temporary file's path under ``directory``: a bundle's, until ``commit``."""
    return f"{directory}/{TEMP_PREFIX}{uuid.uuid4().hex}{suffix}"


def commit(directory: str, temps: list[str], final: list[str]) -> None:
    """Rename the temporary files ``temps`` to ``final`` (a retry renames only what is still to
    rename) and remove the other temporary files under ``directory``: those of bundle attempts
    that failed."""
    pending = [(src, dst) for src, dst in zip(temps, final, strict=True) if FileSystems.exists(src)]
    if pending:
        with writing(directory):
            FileSystems.rename(*map(list, zip(*pending)))
    orphans = FileSystems.match([f"{directory}/{TEMP_PREFIX}*"])[0].metadata_list
    if orphans:
        FileSystems.delete([m.path for m in orphans])


class BundleFiles(beam.DoFn):
    """Rows held per language over a bundle and written to a temporary file per language when
    they pass ``FLUSH_CHARS`` of text and at the bundle's end (``write(lang, rows)`` writes one
    and gives what to emit for it), emitted on the output ``files_tag`` names (None: the main
    one). A failed bundle's files are never emitted: whoever commits them removes them."""

    files_tag: str | None = None

    def start_bundle(self):
        self.held: dict[str, list] = defaultdict(list)
        self.size = 0

    def hold(self, lang: str, row, chars: int):
        """Holds ``row``; yields what was written when the bundle's rows pass ``FLUSH_CHARS``."""
        self.held[lang].append(row)
        self.size += chars
        if self.size >= FLUSH_CHARS:
            yield from map(self._output, self._flush())

    def finish_bundle(self):
        for written in self._flush():
            yield self._output(window.GlobalWindows.windowed_value_at_end_of_window(written))

    def write(self, lang: str, rows: list):
        raise NotImplementedError

    def _flush(self):
        for lang, rows in self.held.items():
            yield self.write(lang, rows)
        self.held.clear()
        self.size = 0

    def _output(self, value):
        return value if self.files_tag is None else beam.pvalue.TaggedOutput(self.files_tag, value)


class _WriteLines(BundleFiles):
    """(lang, JSON line) -> a temporary file per language a bundle holds lines of, under
    ``{directory}/{lang}/``; emits (lang, its path) once written (``_finalize`` renames them)."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, element: tuple[str, str]):
        lang, line = element
        yield from self.hold(lang, line, len(line))

    def write(self, lang: str, lines: list[str]) -> tuple[str, str]:
        path = temp_path(f"{self.directory}/{lang}", ".jsonl")
        with writing(path), FileSystems.create(path) as f:
            for start in range(0, len(lines), 1000):
                f.write("".join(line + "\n" for line in lines[start:start + 1000]).encode("utf-8"))
        return lang, path


def _finalize(element: tuple[str, list], directory: str) -> tuple[str, int]:
    """A language's temporary files -> ``part-NNNNN-of-MMMMM.jsonl`` (one empty part when it has
    none, as Beam's text sink does); removes the temporary files of failed bundle attempts.
    A retry renames only what is still to rename."""
    lang, paths = element
    temps = sorted(path for path in paths if path)
    final = [f"{directory}/{lang}/{part_name(i, len(temps))}" for i in range(len(temps))]
    if not temps:
        final = [f"{directory}/{lang}/{part_name(0, 1)}"]
        with writing(final[0]):
            FileSystems.create(final[0]).close()
    commit(f"{directory}/{lang}", temps, final[:len(temps)])
    return lang, len(final)


class WritePerLang(beam.PTransform):
    """``(lang, JSON line)`` pairs (``json_line``), in one PCollection or several -> ``{output}/
    {kind}/{lang}/part-*.jsonl`` for every language in ``langs`` (an empty part for a language
    without any). One writer for all languages: the graph does not grow with them."""

    def __init__(self, output: str, kind: str, langs: list[str]):
        super().__init__()
        self.directory, self.langs = f"{output}/{kind}", langs

    def expand(self, lines):
        lines = parts(lines)  # each written where it is made: the local runner materialises a Flatten
        written = [part | f"Write{i or ''}" >> beam.ParDo(_WriteLines(self.directory)) for i, part in enumerate(lines)]
        every_lang = lines[0].pipeline | "EveryLang" >> beam.Create([(lang, "") for lang in self.langs], reshuffle=False)
        return (
            (*written, every_lang)
            | "All" >> beam.Flatten()
            | "ByLang" >> beam.GroupByKey()
            | "Finalize" >> beam.Map(_finalize, self.directory)
        )
