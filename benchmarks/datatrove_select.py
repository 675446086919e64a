"""Baseline for select: HuggingFace datatrove doing comparable work on the same CC-100-style files,
for peak memory (RSS of the whole process tree) and documents/s beside select_memory.py's figures.

    /work/dtvenv/bin/python benchmarks/datatrove_select.py CORPUS_DIR WORKDIR [--workers N]

Runs in its own virtual environment with ``pip install 'datatrove[processing]' orjson spacy
sudachipy sudachidict_core indic-nlp-library`` (datatrove 0.10.1; its JSONL writer, and its word
tokenizers for es/ja and te/hi); nothing of
this project is imported. CORPUS_DIR holds {tel,hin,jpn,spa}.txt: UTF-8, one paragraph a line,
documents separated by blank lines (select_memory.py's corpora). Four datatrove jobs run one after
another, each a LocalPipelineExecutor in its own child process (as datatrove's minhash example
runs them, as separate jobs), with tasks = workers = N except where datatrove fixes the tasks:

1. select:  CC100Reader -> GopherRepetitionFilter -> GopherQualityFilter (both with the file's
            language's datatrove word tokenizer; Gopher's defaults less the English stop words, the
            alpha-words ratio, and for Japanese the minimum mean word length) -> fastText
            lid.176.ftz (this project's packaged model, loaded locally; the file's language must
            score > 0.65, datatrove's default)
            -> JsonlWriter (the filtered documents) -> MinhashDedupSignature (char 5-grams of
            datatrove's simplified text, 16 buckets x 8 hashes = 128, 64-bit xxhash, seed 1)
2. buckets: MinhashDedupBuckets, tasks = num_buckets (datatrove requires a multiple), N workers
3. cluster: MinhashDedupCluster, one task
4. filter:  JsonlReader (the filtered documents of 1) -> MinhashDedupFilter -> JsonlWriter

A sampler thread reads /proc/<pid>/status VmRSS of this process and all its descendants every
0.2 s; the script prints a markdown row a stage and one for the whole run: documents read,
documents kept, tasks, workers, wall s, documents/s (documents read / wall), peak RSS MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

LANGS = {"tel": "te", "hin": "hi", "jpn": "ja", "spa": "es"}  # file stem -> lid.176 label
# lid.176 label -> datatrove word-tokenizer key (tokenizer_assignment.csv; a bare "hi" or "te"
# resolves to its Latin-script proxy row, stanza's)
TOKENIZER = {"te": "tel_Telu", "hi": "hin_Deva", "ja": "jpn_Jpan", "es": "spa_Latn"}
DEFAULT_MODEL = str(Path(__file__).resolve().parent.parent / "pipeline" / "models" / "lid.176.ftz")
STAGES = ("select", "buckets", "cluster", "filter")


# ---------------------------------------------------------------- measurement (no datatrove needed)

def tree_rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in kB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self.running = interval, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, tree_rss_kb(os.getpid()))
            time.sleep(self.interval)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


# ---------------------------------------------------------------- datatrove pipeline (child process)

def build_steps(args):
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                   MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.readers.base import BaseReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import simplify_text
    import numpy as np

    class CC100Reader(BaseReader):
        """{lang}.txt of CORPUS_DIR, one Document per blank-line-separated document; task ``rank``
        reads files[rank::world_size]. metadata: language (lid.176 label), file stem."""
        name = "CC-100 text"

        def __init__(self, corpus: str, langs=tuple(LANGS)):
            super().__init__()
            self.corpus, self.langs = corpus, list(langs)

        def run(self, data=None, rank: int = 0, world_size: int = 1):
            for stem in self.langs[rank::world_size]:
                path = os.path.join(self.corpus, f"{stem}.txt")
                with open(path, encoding="utf-8", errors="replace") as f:
                    buf, n = [], 0
                    for line in f:
                        line = line.rstrip("\n")
                        if line.strip():
                            buf.append(line)
                            continue
                        if buf:
                            yield self._doc(buf, stem, n)
                            buf, n = [], n + 1
                    if buf:
                        yield self._doc(buf, stem, n)

        def _doc(self, lines, stem, n):
            self.stat_update("documents")
            self.update_doc_stats(doc := Document(text="\n".join(lines), id=f"{stem}/{n}",
                                                  metadata={"language": LANGS[stem], "file": stem}))
            return doc

    class PerLanguage(BaseFilter):
        """One datatrove filter a language (its word tokenizer), picked by the file's language."""

        def __init__(self, make, name):
            self.name = name
            super().__init__()
            self.filters = {lang: make(lang) for lang in LANGS.values()}

        def filter(self, doc):
            return self.filters[doc.metadata["language"]].filter(doc)

    class LocalLID(BaseFilter):
        """datatrove's LanguageFilter (ft176 backend, k=-1, threshold 0.65) with the model loaded
        from a local file (LanguageFilter downloads lid.176.bin) and the expected language the
        file's, not any of a list."""
        name = "🌍 Language ID (local lid.176.ftz)"

        def __init__(self, model_path: str, threshold: float = 0.65):
            super().__init__()
            self.model_path, self.threshold, self._model = model_path, threshold, None

        def filter(self, doc):
            if self._model is None:
                from fasttext.FastText import _FastText
                self._model = _FastText(self.model_path)
            labels, scores = self._model.predict(doc.text.replace("\n", " "), k=-1)
            pairs = {label.split("__")[2]: float(s) for label, s in zip(labels, scores)}
            best = max(pairs.items(), key=lambda x: x[1])
            doc.metadata["language_pred"], doc.metadata["language_score"] = best
            if pairs.get(doc.metadata["language"], 0.0) > self.threshold:
                return True
            return False, "lid_mismatch" if best[0] != doc.metadata["language"] else "lid_low_confidence"

    class CharMinhashSignature(MinhashDedupSignature):
        """datatrove's signature stage with character 5-gram shingles of the simplified text (its
        own shingles are word 5-grams of its word tokenizer), as the project's MinHash."""

        def get_shingles(self, text):
            t = simplify_text(text, self.config.norm_config)
            n = self.config.n_grams
            grams = [t[i:i + n] for i in range(len(t) - n + 1)] if len(t) >= n else ([t] if t else [])
            return np.fromiter((self._hash_func(g) for g in grams), dtype=np.uint64).reshape((-1, 1))

    work = Path(args.workdir)
    config = MinhashConfig(n_grams=5, num_buckets=args.buckets, hashes_per_bucket=args.hashes_per_bucket,
                           hash_config=HashConfig(precision=64))
    if args.stage == "select":
        # Gopher defaults but: its stop words are English; the synthetic Telugu corpus has ~25 %
        # punctuation tokens, so most of it would fail "80 % of words have a letter"
        quality = dict(min_stop_words=None, max_non_alpha_words_ratio=None)
        quality_ja = dict(quality, min_avg_word_length=None)  # Japanese words average < 3 characters
        return [
            CC100Reader(args.corpus),
            PerLanguage(lambda lang: GopherRepetitionFilter(language=TOKENIZER[lang]), "👯 Gopher Repetition (per language)"),
            PerLanguage(lambda lang: GopherQualityFilter(language=TOKENIZER[lang], **(quality_ja if lang == "ja" else quality)),
                        "🥇 Gopher Quality (per language)"),
            LocalLID(args.model),
            JsonlWriter(str(work / "filtered"), compression=None),
            CharMinhashSignature(str(work / "signatures"), config=config),
        ]
    if args.stage == "buckets":
        return [MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)]
    if args.stage == "cluster":
        return [MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)]
    return [
        JsonlReader(str(work / "filtered")),
        MinhashDedupFilter(str(work / "remove_ids")),
        JsonlWriter(str(work / "output"), compression=None),
    ]


def run_stage(args) -> None:
    from datatrove.executor import LocalPipelineExecutor
    tasks = {"select": args.workers, "buckets": args.buckets, "cluster": 1, "filter": args.workers}[args.stage]
    LocalPipelineExecutor(pipeline=build_steps(args), tasks=tasks, workers=min(args.workers, tasks),
                          logging_dir=str(Path(args.workdir) / "logs" / args.stage)).run()


def stage_counts(workdir: Path, stage: str) -> tuple[int | None, int | None]:
    """(documents in, documents out) of a stage from datatrove's merged stats.json."""
    try:
        stats = json.loads((workdir / "logs" / stage / "stats.json").read_text())
    except (OSError, ValueError):
        return None, None
    steps = {s["name"]: s["stats"] for s in stats}
    def get(step_prefix, key):
        for name, st in steps.items():
            if name.startswith(step_prefix) or step_prefix in name:
                v = st.get(key)
                return v.get("total") if isinstance(v, dict) else v
        return None
    if stage == "select":
        return get("CC-100", "documents"), get("MinHash stage 1", "total")
    if stage == "filter":
        return get("MinHash stage 4", "total"), get("MinHash stage 4", "forwarded")
    return None, None


# ---------------------------------------------------------------- driver

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus")
    p.add_argument("workdir")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--buckets", type=int, default=16, help="MinHash bands (16 x 8 = 128 hashes)")
    p.add_argument("--hashes-per-bucket", type=int, default=8)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--stage", choices=STAGES, help="(internal) run one stage in this process")
    p.add_argument("--keep", action="store_true", help="keep WORKDIR's outputs")
    args = p.parse_args(argv)
    if args.stage:
        run_stage(args)
        return 0

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sampler = Sampler()
    sampler.start()
    rows, t0, n_docs = [], time.perf_counter(), None
    for stage in STAGES:
        stage_sampler = Sampler()
        stage_sampler.start()
        start = time.perf_counter()
        with open(work / f"{stage}.log", "w") as log:
            rc = subprocess.call([sys.executable, __file__, *sys.argv[1:], "--stage", stage] if argv is None
                                 else [sys.executable, __file__, *argv, "--stage", stage], stdout=log, stderr=log)
        wall = time.perf_counter() - start
        peak = stage_sampler.stop()
        if rc:
            print(f"stage {stage} failed ({rc}); see {work / (stage + '.log')}", file=sys.stderr)
            print((work / f"{stage}.log").read_text()[-3000:], file=sys.stderr)
            return rc
        d_in, d_out = stage_counts(work, stage)
        if stage == "select":
            n_docs = d_in
        rows.append((stage, d_in, d_out, wall, peak))
    total_wall, total_peak = time.perf_counter() - t0, sampler.stop()
    load = os.getloadavg()
    print(f"corpus {args.corpus}, workers {args.workers}, minhash {args.buckets}x{args.hashes_per_bucket} "
          f"char 5-grams, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| stage | documents in | documents out | workers | wall s | documents/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    fmt = lambda v: "" if v is None else f"{v:,}"
    for stage, d_in, d_out, wall, peak in rows:
        print(f"| {stage} | {fmt(d_in)} | {fmt(d_out)} | {args.workers} | {wall:.1f} | "
              f"{n_docs / wall:,.0f} | {peak / 1024:,.0f} |")
    print(f"| total | {fmt(n_docs)} | {fmt(rows[-1][2])} | {args.workers} | {total_wall:.1f} | "
          f"{n_docs / total_wall:,.0f} | {total_peak / 1024:,.0f} |")
    if not args.keep:
        for sub in ("filtered", "signatures", "buckets", "remove_ids", "output"):
            shutil.rmtree(work / sub, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
