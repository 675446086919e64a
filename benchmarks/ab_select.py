"""Select-stage wall time and peak memory of two checkouts of this project, on the ``make bench``
corpora, in alternating runs (so a slow spell of a shared machine falls on both):

    python benchmarks/ab_select.py BEFORE_DIR AFTER_DIR [--docs 50000] [--rounds 3] [--workdir DIR]

Each run is ``python -m pipeline.main --langs tel,hin,jpn,spa --until select`` from that
checkout (its own code, the same venv), one worker, into an empty output. Prints per corpus the
fastest wall time and the peak RSS of each side, and after / before; fails unless both sides
wrote the same records.
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

from benchmarks.select_bench import LANGS, build_corpus, sorted_lines  # noqa: E402


def run(checkout: Path, corpus: Path, out: Path) -> tuple[float, float]:
    """(wall s, peak RSS in MB) of one select run of ``checkout`` on ``corpus``."""
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, "-m", "pipeline.main", "--langs", ",".join(LANGS), "--input", str(corpus / "{lang}.txt"),
            "--output", str(out), "--until", "select", "--direct_num_workers=1"]
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{checkout}: the select run failed")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ab_select_"))
    print(f"{args.docs} documents per corpus, {args.rounds} rounds, load {os.getloadavg()[0]:.1f} at the start")
    print("| corpus | before: fastest wall s | peak RSS MB | after: fastest wall s | peak RSS MB | after / before |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("low", "heavy"):
        corpus = work / kind
        corpus.mkdir(parents=True, exist_ok=True)
        rng = random.Random(0)
        for code in LANGS:
            build_corpus(code, args.docs // len(LANGS), corpus / f"{code}.txt", rng, kind == "heavy")
        best = {side: (float("inf"), 0.0) for side in ("before", "after")}
        for _ in range(args.rounds):
            for side in ("before", "after"):
                wall, rss = run(getattr(args, side), corpus, work / f"{kind}-{side}")
                best[side] = (min(best[side][0], wall), max(best[side][1], rss))
        if sorted_lines(work / f"{kind}-before" / "data", "*/part-*") != sorted_lines(work / f"{kind}-after" / "data", "*/part-*"):
            raise SystemExit(f"{kind}: the two checkouts wrote different records")
        (bw, brss), (aw, arss) = best["before"], best["after"]
        print(f"| {kind} | {bw:.1f} | {brss:,.0f} | {aw:.1f} | {arss:,.0f} | {aw / bw:.3f} |")
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
