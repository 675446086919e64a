"""Select-stage throughput: the Beam pipeline against the same work as a plain Python loop,
and batched MinHash against datasketch's per-shingle ``MinHash.update``.

    python benchmarks/select_bench.py [--docs 50000] [--workdir DIR]

Builds a corpus of --docs documents (split over tel, hin, jpn, spa) from the bundled sample:
each document follows a sample document's layout, its junk and foreign paragraphs kept verbatim
(so the filters and LID have work) and its genuine paragraphs replaced by new text drawn from
the language's own words (so dedup does not collapse the corpus); 5% of documents are exact
copies of earlier ones. Prints one table; all figures come from this one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import lzma
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import config as config_mod  # noqa: E402
from pipeline.languages import get  # noqa: E402
from transforms import dedup  # noqa: E402
from transforms.read import BATCH_DOCS, Document, split_documents  # noqa: E402
from transforms.select import ParagraphScorer, make_fragments, record_stats, reject_stat  # noqa: E402
from transforms.write import to_json  # noqa: E402

LANGS = ("tel", "hin", "jpn", "spa")
SAMPLE = ROOT / "pipeline" / "sample"
LABELS = ROOT / "tests" / "data"


def build_corpus(lang: str, n_docs: int, path: Path, rng: random.Random) -> None:
    labels = {}
    for line in (LABELS / f"{lang}.labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels[row["text"]] = row["label"]
    docs = [p for _, p in split_documents(lzma.open(SAMPLE / f"{lang}.txt.xz"))]
    genuine = [t for t, label in labels.items() if label == "genuine"]
    spaced = get(lang).spaced
    pool = [w for t in genuine for w in (t.split() if spaced else _chunks(t))]
    written: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_docs):
            if written and rng.random() < 0.05:
                text = rng.choice(written)
            else:
                paragraphs = []
                for p in rng.choice(docs):
                    if labels.get(p, "genuine") in ("junk", "foreign"):
                        paragraphs.append(p)
                    else:
                        n = max(3, len(p.split()) if spaced else len(_chunks(p)))
                        # ends as the original does (a sentence end): prose, not a menu line
                        paragraphs.append((" " if spaced else "").join(rng.choices(pool, k=n)) + p[-1])
                text = "\n".join(paragraphs)
                written.append(text)
            f.write(text + "\n\n")


def _chunks(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def plain_loop(corpus: Path, out: Path, cfg: config_mod.Config) -> int:
    """The select stage's work without Beam: same functions, in-memory grouping."""
    records_total = 0
    for code in LANGS:
        lang, lang_cfg = get(code), cfg.for_lang(code).select
        scorer = ParagraphScorer(lang, lang_cfg)
        _, _, min_matches = dedup.bands_of(lang_cfg.dedup)
        stats, kept_by_doc = Counter(), {}
        exact, bands, rejects = defaultdict(list), defaultdict(list), []
        with open(corpus / f"{code}.txt", "rb") as f:
            docs = [Document(code, f"{code}.txt", i, tuple(p)) for i, p in split_documents(f)]
        for start in range(0, len(docs), BATCH_DOCS):
            batch = docs[start:start + BATCH_DOCS]
            for doc, scored in zip(batch, scorer.score(batch), strict=True):
                stats["paragraphs.read"] += len(doc.paragraphs)
                rejects += scored.rejects
                for key, value in scored.exact:
                    exact[key].append(value)
                for key, value in scored.bands:
                    bands[key].append(value)
                if scored.kept:
                    kept_by_doc[(doc.file, doc.doc)] = scored.kept
        pairs = Counter()
        for key, members in bands.items():
            for pair, n in dedup.band_pairs(key, members, min_matches):
                pairs[pair] += n
        components = dedup.ConnectedComponents()
        acc = components.create_accumulator()
        for key, members in exact.items():
            for link in dedup.exact_links(key, members):
                acc = components.add_input(acc, link)
        for pair_count in pairs.items():
            for link in dedup.near_links(pair_count, min_matches):
                acc = components.add_input(acc, link)
        duplicates = defaultdict(dict)
        for (file, doc, i), value in components.extract_output(acc).items():
            duplicates[(file, doc)][i] = value
        (out / code).mkdir(parents=True, exist_ok=True)
        with open(out / code / "data.jsonl", "w", encoding="utf-8") as data:
            for (file, doc), kept in kept_by_doc.items():
                records, more = make_fragments(code, lang_cfg, file, doc, kept, duplicates[(file, doc)])
                rejects += more
                for record in records:
                    stats.update(dict(record_stats(record)))
                    data.write(to_json(record) + "\n")
                records_total += len(records)
        with open(out / code / "rejects.jsonl", "w", encoding="utf-8") as f:
            for line in rejects:
                name, n = reject_stat(line)
                stats[name] += n
                f.write(to_json(line) + "\n")
    return records_total


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def minhash_rates(texts: list[str], num_perm: int) -> dict[str, float]:
    from datasketch import MinHash

    from transforms.minhash import MinHasher, normalize

    hasher = MinHasher(num_perm, 5)
    rates = {}
    t = time.perf_counter()
    for i in range(0, len(texts), 3):  # as the pipeline calls it: one document (~3 paragraphs)
        hasher.signatures(texts[i:i + 3])
    rates["ours, per document (~3 texts)"] = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    hasher.signatures(texts)
    rates[f"ours, one batch of {len(texts)}"] = len(texts) / (time.perf_counter() - t)
    subset = texts[: max(200, len(texts) // 10)]
    t = time.perf_counter()
    for text in subset:
        m, norm = MinHash(num_perm=num_perm), normalize(text)
        for j in range(max(1, len(norm) - 4)):
            m.update(norm[j:j + 5].encode("utf-8"))
    rates["datasketch MinHash.update per shingle"] = len(subset) / (time.perf_counter() - t)
    return rates


def main_bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="select_bench_"))
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for code in LANGS:
        build_corpus(code, args.docs // len(LANGS), corpus / f"{code}.txt", rng)
    size_mb = sum(f.stat().st_size for f in corpus.iterdir()) / 1e6
    cfg = config_mod.load("demo")

    gc.freeze()  # as pipeline.main does before a run
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    loop_records = plain_loop(corpus, work / "loop", cfg)
    loop_wall, loop_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0

    # the pipeline as users run it: its own process, one worker
    argv = [sys.executable, "-m", "pipeline.main", "--langs", ",".join(LANGS),
            "--input", str(corpus / "{lang}.txt"), "--output", str(work / "beam"),
            "--until", "select", "--direct_num_workers=1"]
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    beam_wall, beam_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    beam_records = sum(
        1 for f in (work / "beam" / "data").glob("*/part-*") for _ in open(f, encoding="utf-8")
    )
    if beam_records != loop_records:
        raise SystemExit(f"outputs differ: pipeline {beam_records} records, loop {loop_records}")

    texts = [
        json.loads(line)["response"].split("\n")[0]
        for f in sorted((work / "loop").glob("*/data.jsonl"))
        for line in open(f, encoding="utf-8").readlines()[:1500]
    ]
    rates = minhash_rates(texts, cfg.select.dedup.num_perm)
    docs = args.docs // len(LANGS) * len(LANGS)
    print(f"\ncorpus: {docs} documents, {size_mb:.0f} MB, {loop_records} records selected "
          f"(identical count from both paths); {os.cpu_count()} cores, one worker\n")
    print("| select stage | wall s | CPU s | documents/s per core |")
    print("|---|---:|---:|---:|")
    print(f"| plain Python loop | {loop_wall:.1f} | {loop_cpu:.1f} | {docs / loop_wall:,.0f} |")
    print(f"| Beam pipeline (`python -m pipeline.main`, FnApiRunner, 1 worker) | {beam_wall:.1f} "
          f"| {beam_cpu:.1f} "
          f"| {docs / beam_wall:,.0f} |")
    print(f"\npipeline / plain loop throughput: {loop_wall / beam_wall:.2f}\n")
    print(f"| MinHash ({cfg.select.dedup.num_perm} permutations, char 5-grams, {len(texts)} "
          "paragraphs) | signatures/s | vs datasketch |")
    print("|---|---:|---:|")
    base = rates["datasketch MinHash.update per shingle"]
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main_bench()
