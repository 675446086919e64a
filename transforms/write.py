"""Write a language's records, rejects and stats in the layout of CONTRACT.md."""

from __future__ import annotations

import json
import math

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.options import STAGES


def to_json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


class WriteJsonl(beam.PTransform):
    """Dicts -> ``{directory}/part-NNNNN-of-MMMMM.jsonl``, one JSON object a line."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory

    def expand(self, records):
        return (
            records
            | "Json" >> beam.Map(to_json)
            | "Write" >> beam.io.WriteToText(
                f"{self.directory}/part",
                file_name_suffix=".jsonl",
                shard_name_template="-SSSSS-of-NNNNN",
            )
        )


def build_stats(lang: str, sums: dict[str, int], config: dict) -> dict:
    """The stats document of one language from summed (name, count) pairs."""
    prefix = "paragraphs.rejected."
    rejected = {k[len(prefix):]: v for k, v in sorted(sums.items()) if k.startswith(prefix)}
    records = sums.get("selected_records", 0)
    total, sumsq = sums.get("response_chars.sum", 0), sums.get("response_chars.sumsq", 0)
    mean = total / records if records else 0.0
    std = math.sqrt(max(0.0, sumsq / records - mean**2)) if records else 0.0
    hist_prefix = "response_chars.hist."
    histogram = {
        int(k[len(hist_prefix):]): v for k, v in sums.items() if k.startswith(hist_prefix)
    }
    stages: dict[str, dict] = {}
    for key, n in sorted(sums.items()):
        if key.startswith("stages."):
            _, stage, kind, *reason = key.split(".", 3)
            entry = stages.setdefault(stage, {"in": 0, "out": 0, "rejected": {}})
            if kind == "rejected":
                entry["rejected"][reason[0]] = n
            else:
                entry[kind] = n
    return {
        "lang": lang,
        "paragraphs": {
            "read": sums.get("paragraphs.read", 0),
            "kept": sums.get("paragraphs.kept", 0),
            "rejected": rejected,
        },
        "selected_records": records,
        "stages": {stage: stages[stage] for stage in STAGES if stage in stages},
        "lengths": {
            "response_chars": {
                "mean": round(mean, 1),
                "std": round(std, 1),
                "histogram": {f">={k}": histogram[k] for k in sorted(histogram)},
            }
        },
        "config": config,
    }


def _write_json(path: str, document: dict) -> None:
    with FileSystems.create(path) as f:
        f.write((json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def _write_lang_stats(element, output: str, configs: dict[str, dict]) -> str:
    lang, pairs = element
    path = f"{output}/stats/{lang}.json"
    _write_json(path, build_stats(lang, dict(pairs), configs[lang]))
    return path


class WriteStats(beam.PTransform):
    """((lang, name), count) pairs -> ``{output}/stats/{lang}.json`` for every language in
    ``configs`` (written even when all its counts are 0)."""

    def __init__(self, output: str, configs: dict[str, dict]):
        super().__init__()
        self.output, self.configs = output, configs

    def expand(self, pairs):
        every_lang = pairs.pipeline | "EveryLang" >> beam.Create(
            [((lang, "paragraphs.read"), 0) for lang in self.configs]
        )
        return (
            (pairs, every_lang)
            | "All" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "ByLang" >> beam.MapTuple(lambda key, n: (key[0], (key[1], n)))
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write_lang_stats, self.output, self.configs)
        )


class WritePerLang(beam.PTransform):
    """Dicts with a ``lang`` field -> ``{output}/{kind}/{lang}/part-*.jsonl`` per language."""

    def __init__(self, output: str, kind: str, langs: list[str]):
        super().__init__()
        self.output, self.kind, self.langs = output, kind, langs

    def expand(self, records):
        index = {lang: i for i, lang in enumerate(self.langs)}
        parts = records | "ByLang" >> beam.Partition(lambda r, _: index[r["lang"]], len(self.langs))
        for lang, part in zip(self.langs, parts, strict=True):
            part | f"Write/{lang}" >> WriteJsonl(f"{self.output}/{self.kind}/{lang}")
        return records.pipeline
