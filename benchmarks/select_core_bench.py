"""CPU time of the select stage's core (``ParagraphScorer.score`` and ``.buckets``: filters,
LID, MinHash, bucket entries) on a ``select_bench`` corpus, best of N, without Beam. Run it
from two checkouts on the same corpus directory to compare a change (CPU time, best of N:
steadier than wall time on a shared machine).

    python benchmarks/select_core_bench.py [--docs 4000] [--repeat 5] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.select_bench import LANGS, corpus_dir  # noqa: E402
from pipeline import config as config_mod  # noqa: E402
from pipeline.languages import get  # noqa: E402
from transforms.select.stage import ParagraphScorer  # noqa: E402
from transforms.sources.cc100 import BATCH_DOCS, Document, read_lines, split_documents  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", default=None, help="reused when it holds the corpus already")
    args = ap.parse_args()
    corpus = corpus_dir(args.corpus, args.docs, "select_core_")
    cfg = config_mod.load("demo")
    docs, scorers = {}, {}
    for code in LANGS:
        with open(corpus / f"{code}.txt", "rb") as f:
            docs[code] = [Document(code, f"{code}.txt", i, tuple(p))
                          for i, p, _ in split_documents(read_lines(f))]
        scorers[code] = ParagraphScorer(get(code), cfg.for_lang(code).select)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.process_time()
        for code in LANGS:
            for i in range(0, len(docs[code]), BATCH_DOCS):
                batch = docs[code][i:i + BATCH_DOCS]
                scorers[code].buckets(batch, scorers[code].score(batch))
        best = min(best, time.process_time() - start)
    n_docs = sum(len(d) for d in docs.values())
    n_paragraphs = sum(len(doc.paragraphs) for d in docs.values() for doc in d)
    print(f"{n_docs} documents, {n_paragraphs} paragraphs ({corpus}): best of {args.repeat} "
          f"{best:.2f} s CPU, {n_docs / best:,.0f} documents per CPU-second")


if __name__ == "__main__":
    main()
