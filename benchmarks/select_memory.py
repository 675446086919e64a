"""Select's peak memory and speed against the size of its input, on one and two local workers:

    python benchmarks/select_memory.py [--docs 20000,100000,1000000] [--workers 1,2] [--heavy] [--workdir DIR]
    python benchmarks/select_memory.py build DOCS DIR [--heavy]     # only the corpus

Each corpus holds DOCS documents over tel, hin, jpn and spa (a quarter each), made as
``make bench``'s low-duplication corpus (``select_bench.build_corpus``) with every three of its
documents joined into one: ~5.5 paragraphs a document, as CC-100's. Each run is the README's
command, ``python -m pipeline.main --langs tel,hin,jpn,spa --input DIR/{lang}.txt --until select
--direct_num_workers=W``, into an empty output; its peak memory is the largest sum of the
resident sets of its process tree (the runner and its worker processes), sampled every 0.2 s.
Prints one table row a run: documents, paragraphs, workers, wall seconds, documents/s, peak MB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.datatrove_select import tree_rss_kb  # noqa: E402  (stdlib only: no datatrove needed)
from benchmarks.select_bench import LANGS, build_corpus  # noqa: E402

JOINED = 3  # documents of build_corpus joined into one


def build(n_docs: int, corpus: Path, heavy: bool = False) -> None:
    """The corpus of ``n_docs`` documents in ``corpus`` (kept if already there); ``heavy``:
    ``make bench``'s heavy-duplication corpus instead."""
    corpus.mkdir(parents=True, exist_ok=True)
    if all((corpus / f"{code}.txt").exists() for code in LANGS):
        return
    rng = random.Random(0)
    for code in LANGS:
        single = corpus / f"{code}.single"
        build_corpus(code, n_docs // len(LANGS) * JOINED, single, rng, heavy)
        with open(single, encoding="utf-8") as src, open(corpus / f"{code}.txt", "w", encoding="utf-8") as out:
            for i, doc in enumerate(src.read().split("\n\n")[:-1]):  # a file of 1M documents: ~0.5 GB
                out.write(("\n\n" if i and i % JOINED == 0 else "\n" if i else "") + doc)
            out.write("\n\n")
        single.unlink()


def run(corpus: Path, out: Path, workers: int) -> tuple[float, float, int]:
    """(wall s, peak tree RSS in MB, paragraphs read) of one select run."""
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, "-m", "pipeline.main", "--langs", ",".join(LANGS), "--input",
            str(corpus / "{lang}.txt"), "--output", str(out), "--until", "select", f"--direct_num_workers={workers}"]
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss_kb(child.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"the select run on {corpus} with {workers} workers failed ({child.returncode})")
    import json

    read = sum(json.loads((out / "stats" / f"{code}.json").read_text())["paragraphs"]["read"] for code in LANGS)
    return wall, peak / 1024, read


def main() -> None:
    if sys.argv[1:2] == ["build"]:
        build(int(sys.argv[2]), Path(sys.argv[3]), "--heavy" in sys.argv)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="20000,100000,1000000")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--workdir")
    ap.add_argument("--heavy", action="store_true", help="the heavy-duplication corpora")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="select_memory_"))
    print(f"load {os.getloadavg()[0]:.1f} at the start; corpora in {work}")
    print("| documents | paragraphs | workers | wall s | documents/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in map(int, args.docs.split(",")):
        corpus = work / f"{'heavy' if args.heavy else 'docs'}{n}"
        build(n, corpus, args.heavy)
        for workers in map(int, args.workers.split(",")):
            wall, peak, read = run(corpus, work / "out", workers)
            print(f"| {n:,} | {read:,} | {workers} | {wall:.1f} | {n / wall:,.0f} | {peak:,.0f} |", flush=True)
    shutil.rmtree(work / "out", ignore_errors=True)


if __name__ == "__main__":
    main()
