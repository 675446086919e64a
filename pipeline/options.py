"""The command line of CONTRACT.md. Other flags must be Apache Beam pipeline options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import PRESETS

SAMPLE_TEMPLATE = str(Path(__file__).parent / "sample" / "{lang}.txt.xz")
# the evol method's default seeds: a few human-written examples per sample language
SAMPLE_SEEDS = str(Path(__file__).parent / "sample" / "seeds.jsonl")


def sample_langs() -> list[str]:
    """The languages of the bundled sample."""
    return sorted(path.name.split(".")[0] for path in Path(SAMPLE_TEMPLATE).parent.glob("*.txt.xz"))


RECORDS_DEFAULT = 32  # --calibrate's records per language

# flag -> the flag it applies only with; (flag, other): flags that do not apply together (one
# would be ignored). Either is exit 2 with one line, before any work.
NEEDS = {"records": "calibrate"}
EXCLUSIVE = (("calibrate", "dry_run"), ("calibrate", "from_stage"), ("calibrate", "until"),
             ("dry_run", "from_stage"))


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``, exit 2, as every other bad argument) and
    the checks of flags that apply only with another, or not together."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        given = {dest for dest in vars(parsed) if getattr(parsed, dest) not in (None, False)}
        for flag, needed in NEEDS.items():
            if flag in given and needed not in given:
                self.error(f"{_flag(flag)} applies only with {_flag(needed)}")
        for a, b in EXCLUSIVE:
            if a in given and b in given:
                self.error(f"{_flag(b)} does not apply with {_flag(a)}")
        if parsed.records is None:
            parsed.records = RECORDS_DEFAULT
        return parsed, rest


def parser() -> argparse.ArgumentParser:
    from pipeline.methods import METHODS

    natural, evol = METHODS["natural"].names, METHODS["evol"].names
    # every method's stage names, for --until and --from-stage (main checks them against --method)
    all_stages = tuple(dict.fromkeys(stage for method in METHODS.values() for stage in method.names))
    p = Parser(
        prog="python -m pipeline.main",
        description="Build instruction-tuning data from natural CC-100 text.",
        epilog="Any other flag is passed to Apache Beam (--runner, --direct_num_workers, ...).",
    )
    p.add_argument("--langs", help="comma-separated ISO 639-3 codes, e.g. tel,hin")
    p.add_argument(
        "--input",
        help="path or glob with {lang} (ISO code) or {cc100} (CC-100 code), on any Beam "
        "filesystem; plain, .xz or .gz: the path of the source named cc100 (config `sources`). "
        "Default: the bundled sample, when config lists no sources. With --method evol: the "
        "seed file(s), JSONL or Parquet ({lang} optional: rows carry their lang)",
    )
    p.add_argument("--output", default="./out", help="output directory or bucket prefix")
    p.add_argument("--preset", default="demo", choices=PRESETS)
    p.add_argument("--config", help="YAML file merged over the preset")
    p.add_argument(
        "--method", default="natural", choices=tuple(METHODS),
        help="natural: CC-100 text, generated instructions (the default); evol: multi-turn "
        "conversations evolved from seed examples (--input: JSONL or Parquet seed rows)",
    )
    p.add_argument(
        "--until", choices=all_stages,
        help=f"last stage to run; natural: {', '.join(natural)} (default {natural[-1]}); evol: "
        f"{', '.join(evol)} (default {evol[-1]})",
    )
    p.add_argument(
        "--from-stage",
        choices=all_stages,
        help="redo this stage and the ones after it, reusing the checkpoints of those before "
        "it (by default a re-run reuses every stage whose checkpoint matches its config and input)",
    )
    p.add_argument(
        "--llm-endpoint",
        help="an existing OpenAI-compatible server (http://host:port/v1) for generate and judge, "
        "instead of starting vLLM; its key is read from $LLM_API_KEY (llm.api_key_env)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="estimate counts, tokens and GPU-hours; no models"
    )
    p.add_argument(
        "--strict-input",
        action="store_true",
        help="a truncated or corrupt input file fails the run (exit 1) instead of being counted "
        "as input_truncated and reported (select.read.strict_input)",
    )
    p.add_argument(
        "--calibrate", action="store_true",
        help="run each model stage on --records selected records on this machine's hardware and "
        "write OUT/calibration.yaml: measured tokens/s and pass rates, for --dry-run --config",
    )
    p.add_argument(
        "--target", metavar="N",
        help="the final records each language ends with (config target.records): the model stages "
        "get a stratified draw of the selected fragments sized for it, in tranches until N are kept",
    )
    p.add_argument("--records", type=int, default=None,
                   help=f"records per language for --calibrate (default {RECORDS_DEFAULT}); only with --calibrate")
    return p
