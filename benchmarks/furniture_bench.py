"""CPU cost of the furniture rules in the select stage's core: ``ParagraphScorer.score`` (filters,
furniture, LID, MinHash) on a ``select_bench`` corpus with the rules off, without
``trailing_sentence``, and as shipped; runs interleaved (off, ..., on, off, ...) so a changing
load hits all alike; prints each run and the medians' ratios to "off".

    python benchmarks/furniture_bench.py [--docs 4000] [--rounds 5] [--corpus DIR] [--pipeline]

``--pipeline`` times the whole select stage instead (``pipeline.main --until select``, the
FnApiRunner in this process: Beam, dedup, fragments, writing), as ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.select_bench import LANGS, corpus_dir  # noqa: E402
from pipeline import config as config_mod  # noqa: E402
from transforms.languages import get  # noqa: E402
from transforms.select.stage import ParagraphScorer  # noqa: E402
from transforms.sources.cc100 import BATCH_DOCS, Document, read_lines, split_documents  # noqa: E402

ARMS = {  # name -> furniture settings changed from the shipped ones
    "off": {"max_short_line_words": None, "template_markup": False,
            "navigation_min_documents": None, "trailing_sentence_gap": None},
    "no trailing": {"trailing_sentence_gap": None},
    "on": {},
}


def scorers(changes: dict) -> dict[str, ParagraphScorer]:
    cfg = config_mod.load("demo")
    out = {}
    for code in LANGS:
        select = cfg.for_lang(code).select
        select = dataclasses.replace(select, furniture=dataclasses.replace(select.furniture, **changes))
        out[code] = ParagraphScorer(get(code), select)
    return out


def run(docs: dict, scorer: dict) -> tuple[float, int]:
    """(CPU seconds, paragraphs kept)."""
    start, kept = time.process_time(), 0
    for code in LANGS:
        for i in range(0, len(docs[code]), BATCH_DOCS):
            kept += sum(len(s.kept) for s in scorer[code].score(docs[code][i:i + BATCH_DOCS]))
    return time.process_time() - start, kept


def run_pipeline(corpus: Path, changes: dict, out: Path) -> tuple[float, int]:
    """(CPU seconds of this process, records written) for one select run on ``corpus``."""
    import json
    import shutil

    from pipeline.main import main as pipeline_main

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = out.parent / f"{out.name}.yaml"
    config.write_text(json.dumps({"select": {"furniture": changes}}), encoding="utf-8")  # JSON is YAML
    start = time.process_time()
    code = pipeline_main(["--langs", ",".join(LANGS), "--input", str(corpus / "{lang}.txt"),
                          "--output", str(out), "--until", "select", "--config", str(config)])
    seconds = time.process_time() - start
    if code != 0:
        raise SystemExit(f"the select stage failed on {out}")
    records = sum(part.read_text(encoding="utf-8").count("\n") for part in out.glob("data/*/part-*.jsonl"))
    return seconds, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--corpus", default=None, help="reused when it holds the corpus already")
    ap.add_argument("--pipeline", action="store_true", help="time the whole select stage")
    args = ap.parse_args()
    corpus = corpus_dir(args.corpus, args.docs, "furniture_bench_")
    docs = {}
    for code in LANGS:
        with open(corpus / f"{code}.txt", "rb") as f:
            docs[code] = [Document(code, f"{code}.txt", i, tuple(p)) for i, p, _ in split_documents(read_lines(f))]
    by_arm = {name: scorers(changes) for name, changes in ARMS.items()}
    times = {name: [] for name in ARMS}
    for round_ in range(args.rounds):
        for name, scorer in by_arm.items():
            if args.pipeline:
                seconds, kept = run_pipeline(corpus, ARMS[name], corpus / "out" / name.replace(" ", "_"))
            else:
                seconds, kept = run(docs, scorer)
            times[name].append(seconds)
            print(f"round {round_} {name:>11}: {seconds:.2f} s CPU, {kept} {'records' if args.pipeline else 'paragraphs kept'}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    n = sum(len(doc.paragraphs) for d in docs.values() for doc in d)
    off = statistics.median(times["off"])
    print(f"{sum(map(len, docs.values()))} documents, {n} paragraphs, median CPU: " + ", ".join(
        f"{name} {statistics.median(t):.2f} s ({statistics.median(t) / off - 1:+.1%})" for name, t in times.items()
    ))

if __name__ == "__main__":
    main()
