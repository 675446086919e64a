"""CPU time of the select stage's core (``ParagraphScorer.score`` and ``.buckets``: filters,
LID, MinHash, bucket entries) on a ``select_bench`` corpus, best of N, without Beam. Run it
from two checkouts on the same corpus directory to compare a change (CPU time, best of N:
steadier than wall time on a shared machine).

    python benchmarks/select_core_bench.py [--docs 4000] [--repeat 5] [--corpus DIR]

``--against REF`` (a git ref, e.g. main) times ``ParagraphScorer.score`` alone, this checkout's
against REF's select modules (filters, furniture, langid, stage) loaded into the same process,
in alternating rounds, checks that both give the same kept paragraphs (LID probabilities
included) and reject lines, and prints the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.select_bench import LANGS, corpus_dir  # noqa: E402
from pipeline import config as config_mod  # noqa: E402
from transforms.languages import get  # noqa: E402
from transforms.select.stage import ParagraphScorer  # noqa: E402
from transforms.sources.cc100 import BATCH_DOCS, Document, read_lines, split_documents  # noqa: E402

BASELINE_MODULES = ("filters", "furniture", "langid", "stage")


def baseline_scorer_class(ref: str) -> type:
    """``ParagraphScorer`` as of git ``ref``: its select modules loaded under other names,
    the stage's module globals pointed at ``ref``'s filters, furniture and langid."""
    modules = {}
    for name in BASELINE_MODULES:
        source = subprocess.run(
            ["git", "show", f"{ref}:transforms/select/{name}.py"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        module = types.ModuleType(f"baseline_{name}")
        module.__file__ = str(ROOT / "transforms" / "select" / f"{name}.py")  # langid's model path
        sys.modules[module.__name__] = module  # a dataclass looks its module up there
        exec(compile(source, f"{ref}:transforms/select/{name}.py", "exec"), module.__dict__)  # noqa: S102
        modules[name] = module
    for name in ("filters", "furniture", "langid"):
        setattr(modules["stage"], name, modules[name])
    return modules["stage"].ParagraphScorer


def compare(ref: str, docs: dict, cfg, repeat: int) -> None:
    """Time ``score`` alone, this checkout's and ``ref``'s, alternating; check equal output."""
    classes = {"new": ParagraphScorer, ref: baseline_scorer_class(ref)}
    scorers = {k: {code: c(get(code), cfg.for_lang(code).select) for code in LANGS} for k, c in classes.items()}
    best, outputs = dict.fromkeys(classes, float("inf")), {}
    for _ in range(repeat):
        for key in classes:
            out = []
            start = time.process_time()
            for code in LANGS:
                for i in range(0, len(docs[code]), BATCH_DOCS):
                    out.extend(scorers[key][code].score(docs[code][i:i + BATCH_DOCS]))
            best[key] = min(best[key], time.process_time() - start)
            outputs[key] = [(s.kept, s.rejects) for s in out]
    same = outputs["new"] == outputs[ref]
    print(f"score() alone, best of {repeat} CPU: {ref} {best[ref]:.2f} s, this checkout "
          f"{best['new']:.2f} s: {best[ref] / best['new']:.2f}x faster; same output: {same}")
    if not same:
        raise SystemExit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--corpus", default=None, help="reused when it holds the corpus already")
    ap.add_argument("--against", default=None, help="git ref: time score() alone against it")
    args = ap.parse_args()
    corpus = corpus_dir(args.corpus, args.docs, "select_core_")
    cfg = config_mod.load("demo")
    docs, scorers = {}, {}
    for code in LANGS:
        with open(corpus / f"{code}.txt", "rb") as f:
            docs[code] = [Document(code, f"{code}.txt", i, tuple(p))
                          for i, p, _ in split_documents(read_lines(f))]
        scorers[code] = ParagraphScorer(get(code), cfg.for_lang(code).select)
    if args.against:
        compare(args.against, docs, cfg, args.repeat)
        return
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
