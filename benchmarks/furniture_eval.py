"""Page furniture in kept responses, before and after the furniture rules, on the development set.

    python benchmarks/furniture_eval.py [--langs ben,tam,...] [--workdir DIR] [--dev DIR]

Runs the select stage (``python -m pipeline.main --until select``, FnApiRunner) on
``benchmarks/furniture_dev/{lang}.txt`` twice: with the furniture rules off ("before") and with
the configuration as shipped ("after"), and prints per language, from the labels: the share of
the paragraphs inside kept responses that are furniture, and the share of genuine paragraphs
kept (recall). "headings kept" counts the headings that directly precede a kept genuine
paragraph: what keeping headings with their prose would add to the responses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEV = ROOT / "benchmarks" / "furniture_dev"
LANGS = tuple(sorted(p.stem.split(".")[0] for p in DEV.glob("*.labels.jsonl")))
FURNITURE_REASONS = ("template_markup", "no_sentence_end", "navigation", "trailing_sentence")
RULES_OFF = {"select": {"furniture": {
    "max_short_line_words": None, "template_markup": False, "navigation_min_documents": None,
    "trailing_sentence_gap": None,
}}}


def load_labels(lang: str, dev: Path = DEV) -> dict[str, str]:
    rows = (json.loads(line) for line in (dev / f"{lang}.labels.jsonl").read_text(encoding="utf-8").splitlines())
    return {row["text"]: row["label"] for row in rows}


def run_select(out: Path, langs, config: dict | None, dev: Path = DEV) -> Path:
    from pipeline.main import main

    args = ["--langs", ",".join(langs), "--input", str(dev / "{lang}.txt"), "--output", str(out),
            "--until", "select"]
    if config:
        path = out.parent / f"{out.name}.yaml"
        path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        args += ["--config", str(path)]
    if main(args) != 0:
        raise SystemExit(f"the select stage failed on {out}")
    return out


def measure(out: Path, lang: str, dev: Path = DEV) -> dict:
    labels = load_labels(lang, dev)
    kept = [
        p
        for part in sorted((out / "data" / lang).glob("part-*.jsonl"))
        for line in part.read_text(encoding="utf-8").splitlines()
        for p in json.loads(line)["response"].split("\n")
    ]
    kinds = Counter(labels[p] for p in kept)
    furniture = sum(n for label, n in kinds.items() if label.startswith("furniture"))
    genuine = [t for t, label in labels.items() if label == "genuine"]
    kept_set = set(kept)
    lost = Counter(  # genuine paragraphs a furniture rule rejected (others: too short alone, ...)
        line["reason"]
        for part in sorted((out / "rejects" / lang).glob("part-*.jsonl"))
        for line in map(json.loads, part.read_text(encoding="utf-8").splitlines())
        if line["reason"] in FURNITURE_REASONS and labels.get(line["text"]) == "genuine"
    )
    headings = 0  # a heading right before a kept genuine paragraph, in the same document
    for doc in (dev / f"{lang}.txt").read_text(encoding="utf-8").split("\n\n"):
        lines = doc.split("\n")
        headings += sum(
            labels.get(a) == "furniture:heading" and labels.get(b) == "genuine" and b in kept_set
            for a, b in zip(lines, lines[1:])
        )
    return {
        "lang": lang,
        "kept_paragraphs": len(kept),
        "furniture_share_of_kept": furniture / len(kept) if kept else 0.0,
        "furniture_kept": {k.split(":")[1]: n for k, n in sorted(kinds.items()) if k != "genuine"},
        "genuine_recall": sum(t in kept_set for t in genuine) / len(genuine),
        "genuine_rejected_as_furniture": dict(lost),
        "headings_before_kept_prose": headings,
    }


def evaluate(workdir: Path, langs=LANGS, dev: Path = DEV) -> dict[str, dict[str, dict]]:
    """{"before" | "after": {lang: measures}}."""
    results = {}
    for name, config in (("before", RULES_OFF), ("after", None)):
        out = run_select(workdir / name, langs, config, dev)
        results[name] = {lang: measure(out, lang, dev) for lang in langs}
    return results


def table(results: dict) -> str:
    rows = [
        "| lang | furniture in kept, before | after | genuine kept, before | after | genuine rejected as furniture | kept paragraphs after | headings before kept prose |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, after in results["after"].items():
        before = results["before"][lang]
        rows.append(
            f"| {lang} | {before['furniture_share_of_kept']:.1%} | {after['furniture_share_of_kept']:.1%} "
            f"| {before['genuine_recall']:.1%} | {after['genuine_recall']:.1%} "
            f"| {sum(after['genuine_rejected_as_furniture'].values())} | {after['kept_paragraphs']} "
            f"| {after['headings_before_kept_prose']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--dev", type=Path, default=DEV, help="pages built by build.py --out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate(args.workdir or Path(tmp), args.langs.split(","), args.dev)
    print(table(results))
    for lang, after in results["after"].items():
        if after["furniture_kept"]:
            print(f"{lang}: furniture kept after: {after['furniture_kept']}")
        if after["genuine_rejected_as_furniture"]:
            print(f"{lang}: genuine rejected as furniture: {after['genuine_rejected_as_furniture']}")


if __name__ == "__main__":
    main()
