"""Export one layer of a checkpoint as a standalone AutoModelForTokenClassification folder.

    python -m train.export --checkpoint runs/x/model --layer entities --to exports/entities

The result needs no code of ours: transformers.pipeline("token-classification", model=DIR) loads it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers import AutoModelForTokenClassification

from models.checkpoint import CheckpointError, load_checkpoint


def export_layer(checkpoint: Path, layer: str, out_dir: Path) -> Path:
    model, tokenizer, info = load_checkpoint(checkpoint)
    if layer not in model.layers:
        raise CheckpointError(f"{checkpoint} has no layer {layer!r}; it has {list(model.layers)}")
    labels = model.layers[layer]
    config = model.encoder.config
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    standalone = AutoModelForTokenClassification.from_config(config)
    missing, unexpected = standalone.base_model.load_state_dict(model.encoder.state_dict(), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"encoder weights do not fit {type(standalone).__name__}: missing {missing}, unexpected {unexpected}")
    classifier = getattr(standalone, "classifier", None)
    if classifier is None or classifier.weight.shape != model.heads[layer].weight.shape:
        raise CheckpointError(f"{type(standalone).__name__} has no linear `classifier` of shape "
                              f"{tuple(model.heads[layer].weight.shape)} to take the {layer} head")
    classifier.load_state_dict(model.heads[layer].state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    standalone.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.export",
        description="Write one tagging layer of a checkpoint as a standalone transformers token-classification "
                    "model (config with id2label, model.safetensors, tokenizer) loadable with no code of ours.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint folder (runs/<name>/model)")
    parser.add_argument("--layer", default="entities", help="which layer to export (default: entities)")
    parser.add_argument("--to", required=True, type=Path, help="output folder")
    args = parser.parse_args(argv)
    try:
        out = export_layer(args.checkpoint, args.layer, args.to)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"exported layer {args.layer} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
