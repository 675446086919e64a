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
    s.add_argument("--in-place", action="store_true",
                   help="for an image: load the models where they are (no manifest, no copy on workers)")
    c = sub.add_parser("config", help="print the models.yaml for a preset's models staged under --dir")
    c.add_argument("--preset", default="demo", choices=config_mod.PRESETS)
    c.add_argument("--config", help="YAML file merged over the preset")
    c.add_argument("--dir", required=True, help="where the models were staged (or baked into the image)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("apache_beam", "httpx", "urllib3", "filelock"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        config = config_mod.load(args.preset, args.config)
        if args.command == "config":
            print(stage.models_yaml(config, args.dir), end="")
            return 0
        path = stage.stage(config, args.to, args.in_place)
    except (config_mod.ConfigError, stage.StageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"staged; run with: --preset {args.preset} --config {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
