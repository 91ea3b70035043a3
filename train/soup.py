"""Average the weights of several checkpoints into one (a uniform "model soup", Wortsman et al. 2022).

    python -m train.soup --to runs/e5-small-soup/model runs/a/model runs/b/model runs/c/model

The ingredients must be runs of one encoder with the same layers, labels, tokenizer and windowing, e.g. one
recipe trained with different seeds: they start from the same pretrained weights, so their average is a
model of its own. The soup costs one model at inference, and it evens out the run-to-run spread of
bf16 CPU training (docs/RESULTS.md has the measured gain). Evaluate it like any checkpoint:
python -m eval --checkpoint runs/e5-small-soup/model.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import UserError, reports_user_errors, user_path

if TYPE_CHECKING:
    from models.checkpoint import CheckpointInfo

# torch and the checkpoint code are imported in the functions that use them, so that `--help` answers without
# waiting for them


def _must_agree(info: CheckpointInfo) -> dict:
    """What ingredients must share for their mean to be a model: the encoder they started from and every setting
    but the loss weights (those shaped training only; the soup keeps the first ingredient's)."""
    settings = info.settings.to_dict()
    del settings["loss_weights"]
    return {"encoder": info.provenance.get("encoder"), **settings}


class SoupError(UserError, ValueError):
    """Ingredients that do not make a soup (fewer than two, one twice), or a --to folder that is taken."""


def _check_compatible(first: Path, first_info: CheckpointInfo, other: Path, other_info: CheckpointInfo) -> None:
    from models.checkpoint import TOKENIZER_FILE, CheckpointError, sha256

    ours, theirs = _must_agree(first_info), _must_agree(other_info)
    for key in ours:
        if ours[key] != theirs[key]:
            raise CheckpointError(
                f"cannot average {first} and {other}: their tagger.json differ in {key!r} "
                f"({ours[key]!r} vs {theirs[key]!r}); only runs of one "
                "encoder with the same layers and windowing can be averaged"
            )
    if sha256(first / TOKENIZER_FILE) != sha256(other / TOKENIZER_FILE):
        raise CheckpointError(
            f"cannot average {first} and {other}: their {TOKENIZER_FILE} differ, so the same "
            "embedding row means different pieces"
        )


def soup(checkpoints: list[Path], out_dir: Path) -> Path:
    """Write the element-wise mean of the checkpoints' encoder and head weights to out_dir; its tagger.json
    records the ingredients and the equivalent command line."""
    import torch

    from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from train.run import git_commit

    checkpoints = [Path(path) for path in checkpoints]
    if len(checkpoints) < 2:
        raise SoupError(f"a soup needs at least two checkpoints, got {len(checkpoints)}")
    resolved = [path.resolve() for path in checkpoints]
    if len(set(resolved)) != len(resolved):
        raise SoupError(
            f"a checkpoint is listed twice in {[str(path) for path in checkpoints]}: that would weigh it double"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SoupError(f"{out_dir} exists and is not empty: choose a new folder for the soup")

    model, tokenizer, first_info = load_checkpoint(checkpoints[0])
    ingredients = [first_info]
    # float64 sums: the mean of N float32 tensors rounds once, not N times
    sums = {
        key: tensor.double() if tensor.is_floating_point() else tensor for key, tensor in model.state_dict().items()
    }
    for path in checkpoints[1:]:
        other, _, info = load_checkpoint(path)
        _check_compatible(checkpoints[0], first_info, path, info)
        for key, tensor in other.state_dict().items():
            if tensor.is_floating_point():
                sums[key] += tensor.double()
            elif not torch.equal(sums[key], tensor):  # integer buffers (position ids) must agree, not average
                raise CheckpointError(f"cannot average {checkpoints[0]} and {path}: their {key!r} differ")
        ingredients.append(info)
        del other
    state = model.state_dict()
    model.load_state_dict(
        {
            key: (value / len(checkpoints)).to(state[key].dtype) if value.is_floating_point() else value
            for key, value in sums.items()
        }
    )

    # how each ingredient was made and what it measured is its own: the soup records them as its ingredients
    train_corpora = sorted(
        {corpus for ingredient in ingredients for corpus in ingredient.provenance.get("data", {}).get("train", [])}
    )
    provenance = {
        "encoder": first_info.provenance.get("encoder"),
        "data": {**first_info.provenance.get("data", {}), "train": train_corpora},
        "run": out_dir.resolve().parent.name if out_dir.name == "model" else out_dir.name,
        "git_commit": git_commit(),
        "command": shlex.join(["python", "-m", "train.soup", "--to", str(out_dir), *map(str, checkpoints)]),
        "soup": [
            {
                "checkpoint": str(path),
                "run": ingredient.provenance.get("run"),
                "command": ingredient.provenance.get("command"),
                "git_commit": ingredient.provenance.get("git_commit"),
                "sha256": ingredient.sha256,
            }
            for path, ingredient in zip(checkpoints, ingredients)
        ],
    }
    save_checkpoint(model, tokenizer, out_dir, first_info.settings, provenance)
    return out_dir


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.soup",
        description="Average the weights of checkpoints of one recipe (e.g. several seeds) into one checkpoint.",
    )
    parser.add_argument("--to", required=True, type=Path, help="the new checkpoint folder (must not exist yet)")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="two or more checkpoint folders (runs/<name>/model)")
    args = parser.parse_args(argv)
    with user_path(args.to):  # e.g. a file in the way of the folder, or no permission to write there
        out = soup(args.checkpoints, args.to)
    print(f"checkpoint: {out} (the mean of {len(args.checkpoints)}); score it with: python -m eval --checkpoint {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
