"""Select-stage throughput: the Beam pipeline against the same work as a plain Python loop, on
a low- and a heavy-duplication corpus of the same size; a naive datasketch dedup loop; batched
MinHash against datasketch's per-shingle ``MinHash.update``.

    python benchmarks/select_bench.py [--docs 50000] [--workdir DIR]

Builds two corpora of --docs documents each (split over tel, hin, jpn, spa) from the bundled
sample, each document in a sample document's layout with its junk and foreign paragraphs kept
verbatim (so the filters and LID have work). Low duplication: genuine paragraphs replaced by new
text drawn from the language's own words, 5% of documents exact copies of earlier ones. Heavy
duplication: every genuine paragraph a perturbed copy of one of the sample's 50 (see
``build_corpus``). Prints the tables and ratios; all figures come from this one run.

Each contender is a program of its own, timed from its start to its end (interpreter, imports,
model loading included): the pipeline as users run it, and this file's ``plain`` and ``naive``
modes (``select_bench.py plain|naive CORPUS OUT``). The plain loop writes what a user gets from
the pipeline's ``--until select`` (records, rejects, stats, report), and the run fails unless
the two wrote the same; only the pipeline writes the stage checkpoint (it is there to resume).
"""

from __future__ import annotations

import argparse
import gc
import json
import lzma
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import config as config_mod  # noqa: E402
from pipeline.config import with_input
from pipeline.methods.natural import run_config  # noqa: E402
from pipeline.ops import report  # noqa: E402
from transforms.languages import get  # noqa: E402
from transforms.records import counts  # noqa: E402
from transforms.records.write import build_stats, dataset_stats, to_json, write_json  # noqa: E402
from transforms.select.stage import select_in_process  # noqa: E402
from transforms.sources.cc100 import Document, read_lines, split_documents  # noqa: E402

LANGS = ("tel", "hin", "jpn", "spa")
SAMPLE = ROOT / "pipeline" / "sample"
LABELS = ROOT / "tests" / "data"


def build_corpus(lang: str, n_docs: int, path: Path, rng: random.Random, heavy: bool = False) -> None:
    """``n_docs`` documents in the layouts of the sample's documents. Low duplication (default):
    genuine paragraphs replaced by new text drawn from the language's words, 5% of documents
    exact copies of earlier ones. ``heavy``: each genuine paragraph replaced by a perturbed copy
    of one of the sample's 50 genuine paragraphs (two words swapped for others, a number
    inserted: templated text as shops, forums and news mirrors write it), no exact copies."""
    labels = {}
    for line in (LABELS / f"{lang}.labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        labels[row["text"]] = row["label"]
    docs = [p for _, p, _ in split_documents(read_lines(lzma.open(SAMPLE / f"{lang}.txt.xz")))]
    genuine = [t for t, label in labels.items() if label == "genuine"]
    spaced = get(lang).spaced
    pool = [w for t in genuine for w in (t.split() if spaced else _chunks(t))]
    sep = " " if spaced else ""
    written: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_docs):
            if not heavy and written and rng.random() < 0.05:
                text = rng.choice(written)
            else:
                paragraphs = []
                for p in rng.choice(docs):
                    if labels.get(p, "genuine") in ("junk", "foreign"):
                        paragraphs.append(p)
                    elif heavy:
                        units = rng.choice(genuine)
                        units = units.split() if spaced else _chunks(units)
                        for _ in range(2):
                            units[rng.randrange(len(units))] = rng.choice(pool)
                        units.insert(rng.randrange(len(units) + 1), str(rng.randrange(1, 1000)))
                        paragraphs.append(sep.join(units))
                    else:
                        n = max(3, len(p.split()) if spaced else len(_chunks(p)))
                        # ends as the original does (a sentence end): prose, not a menu line
                        paragraphs.append(sep.join(rng.choices(pool, k=n)) + p[-1])
                text = "\n".join(paragraphs)
                written.append(text)
            f.write(text + "\n\n")


def corpus_dir(path: str | None, n_docs: int, prefix: str) -> Path:
    """The low-duplication corpus of ``n_docs`` documents over ``LANGS`` in ``path`` (a new
    temporary folder when None), built unless the folder holds it already."""
    corpus = Path(path or tempfile.mkdtemp(prefix=prefix))
    corpus.mkdir(parents=True, exist_ok=True)
    if not all((corpus / f"{code}.txt").exists() for code in LANGS):
        rng = random.Random(0)
        for code in LANGS:
            build_corpus(code, n_docs // len(LANGS), corpus / f"{code}.txt", rng)
    return corpus


def _chunks(text: str, size: int = 4) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def plain_loop(corpus: Path, out: Path, cfg: config_mod.Config) -> int:
    """The select stage's work without Beam (``select_in_process``: the same functions, in-memory
    grouping) and the same outputs a user gets from ``--until select`` (records, rejects,
    ``stats/{lang}.json``, ``report.md`` and its plots); not the stage checkpoint, which only the
    pipeline needs (to resume), so its cost counts as the pipeline's."""
    cfg = with_input(cfg, None, str(corpus / "{lang}.txt"))  # as the pipeline's stats record it
    records_total = 0
    for code in LANGS:
        lang, lang_cfg = get(code), cfg.for_lang(code).select
        with open(corpus / f"{code}.txt", "rb") as f:
            docs = [Document(code, f"{code}.txt", i, tuple(p)) for i, p, _ in split_documents(read_lines(f))]
        selected = select_in_process(lang, lang_cfg, docs)
        stats = Counter({counts.PARAGRAPHS_READ: 0, counts.DATASET_RECORDS: 0})  # what the pipeline counts
        stats.update(selected.stats)
        (out / code).mkdir(parents=True, exist_ok=True)
        with open(out / code / "data.jsonl", "w", encoding="utf-8") as data:
            for record in selected.records:
                stats.update({name: n for (_, name), n in dataset_stats(record)})
                data.write(to_json(record) + "\n")
        records_total += len(selected.records)
        with open(out / code / "rejects.jsonl", "w", encoding="utf-8") as f:
            f.writelines(to_json(line) + "\n" for line in selected.rejects)
        (out / "stats").mkdir(exist_ok=True)
        write_json(str(out / "stats" / f"{code}.json"), build_stats(code, stats, run_config(cfg, lang)))
    report.write(str(out), list(LANGS), cfg.preset)
    return records_total


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def minhash_rates(texts: list[str], num_perm: int) -> dict[str, float]:
    from datasketch import MinHash

    from transforms.select.minhash import MinHasher, normalize

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


def naive_loop(corpus: Path, num_perm: int, threshold: float) -> int:
    """A naive per-document near-duplicate loop: datasketch MinHash of each document's
    character 5-grams (``update_batch``), queried against and inserted into a MinHashLSH."""
    from datasketch import MinHash, MinHashLSH

    from transforms.select.minhash import normalize

    docs = 0
    for code in LANGS:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        with open(corpus / f"{code}.txt", "rb") as f:
            for i, paragraphs, _ in split_documents(read_lines(f)):
                text = normalize(" ".join(paragraphs))
                m = MinHash(num_perm=num_perm)
                m.update_batch([text[j:j + 5].encode() for j in range(max(1, len(text) - 4))])
                if not lsh.query(m):
                    lsh.insert(i, m)
                docs += 1
    return docs


def run_program(args: list[str]) -> tuple[float, float, str]:
    """``python ARGS`` in its own process: (wall s, CPU s, its standard output)."""
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    done = subprocess.run([sys.executable, *args], check=True, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    return time.perf_counter() - t0, cpu_seconds() - cpu0, done.stdout


def run_pipeline(corpus: Path, out: Path) -> tuple[float, float, list[str]]:
    """The select stage as users run it, one worker, into an empty ``out`` (a re-run would
    reuse the last run's checkpoints): (wall s, CPU s, its records' lines, sorted)."""
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, _ = run_program(["-m", "pipeline.main", "--langs", ",".join(LANGS),
                                "--input", str(corpus / "{lang}.txt"), "--output", str(out),
                                "--until", "select", "--direct_num_workers=1"])
    return wall, cpu, sorted_lines(out / "data", "*/part-*")


def run_loop(mode: str, corpus: Path, out: Path) -> tuple[float, float, int]:
    """This file's ``plain`` or ``naive`` mode on ``corpus``: (wall s, CPU s, the count it
    prints: records or documents)."""
    wall, cpu, printed = run_program([__file__, mode, str(corpus), str(out)])
    return wall, cpu, int(printed)


def loop_main(mode: str, corpus: Path, out: Path) -> None:
    """A contender as a program: the plain loop (prints its records) or the naive loop (prints
    its documents), on the demo preset."""
    cfg = config_mod.load("demo")
    gc.freeze()  # as pipeline.main does before a run
    if mode == "plain":
        print(plain_loop(corpus, out, cfg))
    else:
        print(naive_loop(corpus, cfg.select.dedup.num_perm, cfg.select.dedup.threshold))


def sorted_lines(directory: Path, pattern: str) -> list[str]:
    lines = []
    for path in directory.glob(pattern):
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()
    return sorted(lines)


def interleaved(rounds: int, contenders: dict) -> dict:
    """Each contender (name -> a function giving (wall s, CPU s, result)) run ``rounds``
    times, in turns, so that a slow spell of the shared machine falls on all of them: per name,
    the smallest wall and CPU seconds (other load only ever slows a run) and the last result."""
    best = {}
    for _ in range(rounds):
        for name, run in contenders.items():
            wall, cpu, result = run()
            w, c, _ = best.get(name, (math.inf, math.inf, None))
            best[name] = (min(w, wall), min(c, cpu), result)
    return best


def main_bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each contender, in turns; the fastest counts")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="select_bench_"))
    cfg = config_mod.load("demo")
    docs = args.docs // len(LANGS) * len(LANGS)
    load0 = os.getloadavg()[0]
    sizes = {}
    for kind in ("low", "heavy"):
        corpus = work / kind / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        rng = random.Random(0)
        for code in LANGS:
            build_corpus(code, args.docs // len(LANGS), corpus / f"{code}.txt", rng, kind == "heavy")
        sizes[kind] = sum(f.stat().st_size for f in corpus.iterdir()) / 1e6
    # what a run costs whatever its size (the pipeline's imports, graph, runner, report; the
    # plain loop's imports and model loading): a 400-document run of each
    small = work / "small" / "corpus"
    small.mkdir(parents=True, exist_ok=True)
    for code in LANGS:
        build_corpus(code, 100, small / f"{code}.txt", random.Random(1))
    contenders = {}
    for kind in ("low", "heavy", "small"):
        corpus = work / kind / "corpus"
        contenders[f"{kind} loop"] = partial(run_loop, "plain", corpus, work / kind / "loop")
        contenders[f"{kind} beam"] = partial(run_pipeline, corpus, work / kind / "beam")
    contenders["naive"] = partial(run_loop, "naive", work / "low" / "corpus", work / "naive")
    best = interleaved(args.rounds, contenders)

    rows, times = [], {}
    for kind in ("low", "heavy"):
        (loop_wall, loop_cpu, loop_records), (beam_wall, beam_cpu, beam_records) = (
            best[f"{kind} loop"], best[f"{kind} beam"])
        if beam_records != sorted_lines(work / kind / "loop", "*/data.jsonl"):
            raise SystemExit(f"{kind}: the pipeline's {len(beam_records)} records differ from "
                             f"the plain loop's {loop_records}")
        for name in [f"stats/{code}.json" for code in LANGS] + ["report.md"]:
            if (work / kind / "loop" / name).read_bytes() != (work / kind / "beam" / name).read_bytes():
                raise SystemExit(f"{kind}: the pipeline's {name} differs from the plain loop's")
        times[kind] = (loop_wall, beam_wall, loop_cpu, beam_cpu)
        label = f"{kind} duplication ({sizes[kind]:.0f} MB, {loop_records:,} records)"
        rows.append(f"| {label}: plain Python loop | {loop_wall:.1f} | {loop_cpu:.1f} | {docs / loop_wall:,.0f} |")
        rows.append(f"| {label}: Beam pipeline, 1 worker | {beam_wall:.1f} | {beam_cpu:.1f} | "
                    f"{docs / beam_wall:,.0f} |")
    fixed_wall, fixed_cpu, _ = best["small beam"]
    loop_fixed_wall = best["small loop"][0]
    naive_wall, naive_cpu, naive_docs = best["naive"]
    rows.append(f"| low duplication: naive datasketch loop (MinHash + MinHashLSH per document) | "
                f"{naive_wall:.1f} | {naive_cpu:.1f} | {naive_docs / naive_wall:,.0f} |")

    print(f"\n{docs} documents per corpus; {os.cpu_count()} cores, one worker; the fastest of "
          f"{args.rounds} runs of each, in turns; load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| select stage | wall s | CPU s | documents/s |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))
    # CPU seconds too: on a shared machine wall time carries other people's load
    print(f"\nheavy / low duplication time, pipeline: {times['heavy'][1] / times['low'][1]:.2f} wall, "
          f"{times['heavy'][3] / times['low'][3]:.2f} CPU (plain loop: {times['heavy'][0] / times['low'][0]:.2f} "
          f"wall, {times['heavy'][2] / times['low'][2]:.2f} CPU)")
    for kind in ("low", "heavy"):
        print(f"pipeline / plain loop throughput, {kind} duplication: {times[kind][0] / times[kind][1]:.2f} "
              f"wall, {times[kind][2] / times[kind][3]:.2f} CPU")
    beyond = {kind: times[kind][1] - fixed_wall for kind in times}
    print(f"start-up (a 400-document run): pipeline {fixed_wall:.1f} s wall, {fixed_cpu:.1f} s CPU; plain "
          f"loop {loop_fixed_wall:.1f} s wall; pipeline / plain loop beyond them: " + ", ".join(
              f"{kind} {(times[kind][0] - loop_fixed_wall) / beyond[kind]:.2f} wall" if beyond[kind] > 0
              else f"{kind} n/a" for kind in ("low", "heavy")))
    print(f"pipeline / naive datasketch loop documents/s (low duplication): "
          f"{docs / times['low'][1] / (naive_docs / naive_wall):.2f} wall, "
          f"{docs / times['low'][3] / (naive_docs / naive_cpu):.2f} CPU\n")

    texts = [
        json.loads(line)["response"].split("\n")[0]
        for f in sorted((work / "low" / "loop").glob("*/data.jsonl"))
        for line in open(f, encoding="utf-8").readlines()[:1500]
    ]
    rates = minhash_rates(texts, cfg.select.dedup.num_perm)
    print(f"| MinHash ({cfg.select.dedup.num_perm} permutations, char 5-grams, {len(texts)} "
          "paragraphs) | signatures/s | vs datasketch |")
    print("|---|---:|---:|")
    base = rates["datasketch MinHash.update per shingle"]
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("plain", "naive"):
        loop_main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main_bench()
