"""Fine-tune an encoder to tag entities (and other layers): python -m train --config configs/X.yaml [key=value ...]"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from models.errors import reports_user_errors, user_path


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Fine-tune a pretrained encoder with one tagging head per layer; writes runs/<name>/ "
        "with the checkpoint in runs/<name>/model/.",
        epilog="Overrides use dotted keys, e.g. training.epochs=1 name=quick encoder=/path/to/local/model. "
        "On GPUs and clusters: accelerate launch --config_file configs/accelerate/<setup>.yaml -m train ...",
    )
    parser.add_argument("--config", required=True, help="a YAML run config, e.g. configs/e5-small-offline.yaml")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a finished or unfinished run of the same name"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last checkpoint (same config and overrides)",
    )
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE settings that replace the config's")
    args = parser.parse_args(argv)
    if args.overwrite and args.resume:
        parser.error("--resume continues a run and --overwrite replaces it: pass one of them")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # only now: --help and a bad option answer without waiting for torch
    from train.config import load_config
    from train.run import run

    with user_path(args.config):
        config = load_config(args.config, args.overrides)
    command = shlex.join(["python", "-m", "train", *(argv if argv is not None else sys.argv[1:])])
    model_dir = run(config, overwrite=args.overwrite, resume=args.resume, command=command)
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, the main process speaks
        print(f"checkpoint: {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
