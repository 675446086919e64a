"""Write a language's records, rejects and stats in the layout of CONTRACT.md."""

from __future__ import annotations

import json
import math

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems


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
    return {
        "lang": lang,
        "paragraphs": {
            "read": sums.get("paragraphs.read", 0),
            "kept": sums.get("paragraphs.kept", 0),
            "rejected": rejected,
        },
        "selected_records": records,
        "stages": {},
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


class WriteStats(beam.PTransform):
    """(name, count) pairs -> ``path``, one JSON document (written even when all counts are 0)."""

    def __init__(self, path: str, lang: str, config: dict):
        super().__init__()
        self.path, self.lang, self.config = path, lang, config

    def expand(self, pairs):
        return (
            pairs
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "Build" >> beam.Map(lambda sums: build_stats(self.lang, sums, self.config))
            | "Write" >> beam.Map(lambda doc: _write_json(self.path, doc))
        )
