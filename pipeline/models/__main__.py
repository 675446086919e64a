"""``python -m pipeline.models stage --preset P --to DIR``: see ``stage.py``."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from pipeline import config as config_mod
    from pipeline.models import stage

    p = argparse.ArgumentParser(prog="python -m pipeline.models")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stage", help="copy a preset's models to a directory or bucket, then write DIR/models.yaml")
    s.add_argument("--preset", default="demo", choices=config_mod.PRESETS)
    s.add_argument("--config", help="YAML file merged over the preset (its model references are staged)")
    s.add_argument("--to", required=True, help="directory or bucket prefix (gs://, s3://, hdfs://, local)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("apache_beam", "httpx", "urllib3", "filelock"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        config = config_mod.load(args.preset, args.config)
        path = stage.stage(config, args.to)
    except (config_mod.ConfigError, stage.StageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"staged; run with: --preset {args.preset} --config {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
