"""``OUT/report.md``: a human summary of a run, made from ``OUT/stats/{lang}.json``."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems


def _read_json(path: str) -> dict:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def render(stats: list[dict], preset: str) -> str:
    lines = [
        "# Run report",
        "",
        f"Preset: `{preset}`. Every input paragraph is either in a kept record or in "
        "`rejects/{lang}/` with its reason.",
        "",
        "## Selection",
        "",
        "| lang | paragraphs read | kept | rejected | records | response chars mean (std) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        p, length = s["paragraphs"], s["lengths"]["response_chars"]
        lines.append(
            f"| {s['lang']} | {p['read']} | {p['kept']} | {sum(p['rejected'].values())} "
            f"| {s['selected_records']} | {length['mean']} ({length['std']}) |"
        )
    lines += ["", "## Rejected paragraphs by reason", ""]
    for s in stats:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["paragraphs"]["rejected"].items()))
        lines.append(f"- **{s['lang']}**: {reasons or 'none'}")
    return "\n".join(lines) + "\n"


def write(output: str, langs: list[str], preset: str) -> list[dict]:
    """Write ``OUT/report.md``; returns the stats it summarises."""
    stats = [_read_json(f"{output}/stats/{lang}.json") for lang in langs]
    with FileSystems.create(f"{output}/report.md") as f:
        f.write(render(stats, preset).encode("utf-8"))
    return stats
