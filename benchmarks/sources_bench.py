"""Reading a tabular source costs no more per response than reading CC-100 text (issue 10).

Builds, in a temporary directory, a Parquet file of ``--rows`` rows and 10 columns in the shape
of the Aya collection (``targets`` the response, ``language`` naming it, 8 more columns), and a
CC-100 text file holding the same responses as paragraphs (``--paragraphs-per-doc`` to a
document), plain and ``.xz``. Then times, in this process and best of ``--repeat`` interleaved rounds, what the
input layer's workers run per file: for Parquet, each row group read for the 4 columns the
source needs and every row made a document (``inputs.piece_documents``); for CC-100, the file
streamed and split into documents (``cc100.documents``). Prints seconds per million responses
and the ratio Parquet / CC-100 (below 1: Parquet is cheaper per response).

    python benchmarks/sources_bench.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import lzma
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.languages import LANGUAGES  # noqa: E402
from transforms.sources import inputs, tabular  # noqa: E402
from transforms.sources.cc100 import InputFile, documents  # noqa: E402
from transforms.sources.config import ReadConfig, SourceConfig

WORDS = ("ప్రతి వ్యక్తికిని హక్కు గలదు స్వాతంత్ర్యము సమాచారం భాష నగరం రైతులు పుస్తకాలు "
         "चरित्र भारत देश भाषा किसान ज्ञान शहर answer question").split()


def responses(n: int, rng: random.Random) -> list[str]:
    """Sentences of 10-60 words: 60-400 characters, as curated answers run."""
    return [" ".join(rng.choices(WORDS, k=rng.randint(10, 60))) + "." for _ in range(n)]


def build(directory: Path, n: int, per_doc: int, row_group: int) -> tuple[Path, Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    texts = responses(n, rng)
    langs = rng.choices(["telugu", "hindi"], k=n)
    table = pa.table({
        "id": [f"aya-{i}" for i in range(n)],
        "inputs": [t[: len(t) // 2] + "?" for t in texts],
        "targets": texts,
        "dataset_name": rng.choices(["Aya-Dataset", "Xlel_wd", "Adversarial_QA"], k=n),
        "sub_dataset_name": ["-"] * n,
        "task_type": rng.choices(["qa", "summarization", "generation"], k=n),
        "template_id": [rng.randint(1, 20) for _ in range(n)],
        "language": langs,
        "script": ["Telu" if lang == "telugu" else "Deva" for lang in langs],
        "split": ["train"] * n,
    })
    parquet = directory / "aya.parquet"
    pq.write_table(table, parquet, row_group_size=row_group)
    lines = []
    for i, text in enumerate(texts):
        lines.append(text)
        if i % per_doc == per_doc - 1:
            lines.append("")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    plain, xz = directory / "cc100.txt", directory / "cc100.txt.xz"
    plain.write_bytes(data)
    xz.write_bytes(lzma.compress(data, preset=6))
    return parquet, plain, xz


def read_parquet(path: Path) -> int:
    source = SourceConfig("aya", "parquet", str(path), "targets", "id", "language",
                          {"tel": "telugu", "hin": "hindi"}, {"task_type": ["qa", "summarization", "generation"]})
    spec = inputs.spec_of(source)
    plan = inputs.TabularInput("aya", "parquet", str(path), spec, None,
                               tabular.value_map(spec, [LANGUAGES["tel"], LANGUAGES["hin"]]), "tel")
    n = 0
    for group, first in inputs.file_pieces("parquet", str(path)):
        for doc in inputs.piece_documents(plan, str(path), path.name, group, first):
            n += len(doc.paragraphs)
    return n


def read_cc100(path: Path) -> int:
    cfg = ReadConfig()
    with InputFile(str(path), cfg.max_line_bytes) as f:
        return sum(len(doc.paragraphs) for doc in documents("tel", path.name, f.lines(), cfg))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paragraphs-per-doc", type=int, default=3)
    ap.add_argument("--row-group", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sources_bench_") as tmp:
        parquet, plain, xz = build(Path(tmp), args.rows, args.paragraphs_per_doc, args.row_group)
        sizes = {p.name: p.stat().st_size for p in (parquet, plain, xz)}
        readers = (("parquet (4 of 10 columns)", read_parquet, parquet),
                   ("cc100 plain text", read_cc100, plain), ("cc100 .xz", read_cc100, xz))
        results = {name: float("inf") for name, _, _ in readers}
        for _ in range(args.repeat):  # rounds of all three: a load that comes and goes hits each alike
            for name, fn, path in readers:
                start = time.perf_counter()
                n = fn(path)
                results[name] = min(results[name], time.perf_counter() - start)
                assert n == args.rows, (name, n)
        for name, _, path in readers:
            seconds = results[name]
            print(f"{name:28s} {seconds:7.3f} s for {args.rows:,} responses: {seconds / args.rows * 1e6:6.2f} s "
                  f"per million ({sizes[path.name] / 1e6:.1f} MB)")
    parquet_s = results["parquet (4 of 10 columns)"]
    print(f"ratio parquet / cc100 plain: {parquet_s / results['cc100 plain text']:.2f}")
    print(f"ratio parquet / cc100 .xz:   {parquet_s / results['cc100 .xz']:.2f}")


if __name__ == "__main__":
    main()
