"""Digests of what the pipeline writes, to show that a change to the code leaves outputs as they
were: records, rejects (sorted lines, so the sharding does not count), stats, the report and the
dry runs' estimates, on the bundled sample, the ``make bench`` corpora and both demo methods.

    python benchmarks/output_digests.py [--docs 20000] [--cases sample,low,heavy,demo,evol,dryrun]
                                        [--workdir DIR] [--compare BEFORE.json] > AFTER.json

Run it before a change and after it; ``--compare`` prints every digest that differs and exits 1
if any does. ``demo`` and ``evol`` start the vLLM server of ``.venv-vllm`` (``make vllm-env``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = ("sample", "low", "heavy", "demo", "evol", "dryrun")
REUSE = False  # --reuse: digest the outputs a run of this script left in --workdir


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _placeless(text: str, work: Path) -> str:
    """``text`` without the project's and ``work``'s own paths (an evol record names its seed
    file), so two checkouts in two places compare."""
    return text.replace(str(ROOT), "ROOT").replace(str(work), "WORK")


def sorted_lines_md5(directory: Path, work: Path) -> str:
    lines = sorted(line for path in directory.glob("part-*") for line in path.read_text(encoding="utf-8").splitlines())
    return _md5(_placeless("\n".join(lines), work).encode("utf-8"))


def digests(out: Path, work: Path) -> dict[str, str]:
    """Every output of a run in ``out``: per language its records, rejects and stats, the report.
    Paths of the project and of ``work`` are replaced (``_placeless``)."""
    found = {}
    for kind in ("data", "rejects"):
        for lang_dir in sorted((out / kind).glob("*")):
            found[f"{kind}/{lang_dir.name}"] = sorted_lines_md5(lang_dir, work)
    paths = sorted((out / "stats").glob("*.json")) + [p for p in (out / "report.md", out / "dryrun.json") if p.exists()]
    for path in paths:
        found[str(path.relative_to(out))] = _md5(_placeless(path.read_text(encoding="utf-8"), work).encode("utf-8"))
    return found


def pipeline(out: Path, *args: str) -> str:
    """``python -m pipeline.main ARGS --output OUT`` into an empty ``out``; its standard output
    (with ``--reuse``, the run already there is taken as it is)."""
    if REUSE and ((out / "stats").exists() or (out / "dryrun.json").exists()):
        return (out / "stdout.txt").read_text(encoding="utf-8") if (out / "stdout.txt").exists() else ""
    subprocess.run(["rm", "-rf", str(out)], check=True)
    done = subprocess.run([sys.executable, "-m", "pipeline.main", *args, "--output", str(out)],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"pipeline {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    (out / "stdout.txt").write_text(done.stdout, encoding="utf-8")
    return done.stdout


def corpus(work: Path, kind: str, docs: int) -> Path:
    """A ``make bench`` corpus (``benchmarks/select_bench.py``) of ``docs`` documents."""
    from benchmarks.select_bench import LANGS, build_corpus

    path = work / f"{kind}-corpus"
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for code in LANGS:
        build_corpus(code, docs // len(LANGS), path / f"{code}.txt", rng, kind == "heavy")
    return path


def run_case(case: str, work: Path, docs: int) -> dict[str, str]:
    out = work / case
    if case == "sample":
        pipeline(out, "--langs", "tel,hin,jpn,spa", "--until", "select")
    elif case in ("low", "heavy"):
        pipeline(out, "--langs", "tel,hin,jpn,spa", "--until", "select",
                 "--input", str(corpus(work, case, docs) / "{lang}.txt"))
    elif case == "demo":
        pipeline(out, "--langs", "tel,hin", "--preset", "demo")
    elif case == "evol":
        pipeline(out, "--langs", "tel,hin", "--preset", "demo", "--method", "evol")
    elif case == "dryrun":
        found = {}
        for method in ("natural", "evol"):
            printed = pipeline(out / method, "--langs", "tel,hin,jpn,spa", "--dry-run", "--method", method)
            found[f"{method}/stdout"] = _md5(_placeless(printed, work).encode("utf-8"))
            found.update({f"{method}/{k}": v for k, v in digests(out / method, work).items()})
        return found
    return digests(out, work)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000, help="documents of each bench corpus")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--workdir")
    ap.add_argument("--compare", help="a JSON file this script wrote before")
    ap.add_argument("--reuse", action="store_true", help="digest the outputs already in --workdir")
    args = ap.parse_args()
    global REUSE
    REUSE = args.reuse
    work = Path(args.workdir or tempfile.mkdtemp(prefix="digests_"))
    result = {}
    for case in args.cases.split(","):
        print(f"{case} ...", file=sys.stderr)
        result[case] = run_case(case, work, args.docs)
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.compare:
        return 0
    before = json.loads(Path(args.compare).read_text())
    differ = [f"{case}/{name}" for case, found in result.items() for name in sorted(set(found) | set(before.get(case, {})))
              if found.get(name) != before.get(case, {}).get(name)]
    for name in differ:
        print(f"differs: {name}", file=sys.stderr)
    print(f"{len(differ)} of {sum(len(v) for v in result.values())} digests differ", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
