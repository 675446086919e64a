"""Model calls saved by ``--target`` on the bundled sample: the demo run (``--langs tel,hin
--preset demo``) without a target, then with ``--target N``, then the same targeted command
again, each in a fresh output directory (its own call cache) but the last, which reuses the
second's. Model calls are those ``OUT/run.json`` counts as made (NLLB, COMET and the LLM: the
calls a GPU would serve), per kind and in all.

    python benchmarks/target_calls.py [--target 12] [--out DIR]

Needs the vLLM environment (`make vllm-env`); three demo runs, a few minutes each on a laptop
CPU. Writes ``DIR/target_calls.json``. The models are random stand-ins: the pass rates, and so
the share saved, are the demo's, not a real model's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANGS = "tel,hin"


def demo(out: Path, *extra: str) -> dict:
    """One demo run into ``out``: its run.json, stats and wall time."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.main", "--langs", LANGS, "--preset", "demo",
                           "--output", str(out), *extra], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"run failed ({' '.join(extra) or 'no target'}): {done.stderr[-2000:]}")
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    stats = {lang: json.loads((out / "stats" / f"{lang}.json").read_text(encoding="utf-8"))
             for lang in LANGS.split(",")}
    records = {lang: sum(1 for part in (out / "data" / lang).glob("part-*") for _ in part.open(encoding="utf-8"))
               for lang in LANGS.split(",")}
    return {"wall_s": round(time.monotonic() - start, 1), "model_calls": run["model_calls"],
            "made": sum(n["made"] for n in run["model_calls"].values()), "records": records,
            "translate_in": {lang: s["stages"]["translate"]["in"] for lang, s in stats.items()},
            "target": run.get("target")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=int, default=12)
    parser.add_argument("--out", default="/tmp/target-calls")
    args = parser.parse_args()
    base = Path(args.out)
    shutil.rmtree(base, ignore_errors=True)
    full = demo(base / "full")
    targeted = demo(base / "target", "--target", str(args.target))
    again = demo(base / "target", "--target", str(args.target))
    result = {"target": args.target, "without_target": full, "with_target": targeted, "same_command_again": again,
              "calls_ratio": round(targeted["made"] / full["made"], 3) if full["made"] else None}
    (base / "target_calls.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, r in (("no target", full), (f"--target {args.target}", targeted), ("same again", again)):
        print(f"{name:>12}: {r['made']:5d} model calls made, records {r['records']}, translate saw "
              f"{r['translate_in']}, {r['wall_s']} s")
    print(f"calls with the target / without: {result['calls_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
