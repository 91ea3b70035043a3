"""Export one layer of a checkpoint as a standalone AutoModelForTokenClassification folder, or the whole
model (encoder + every head) as an ONNX graph.

    python -m train.export --checkpoint runs/x/model --layer entities --to exports/entities
    python -m train.export --checkpoint runs/x/model --onnx runs/x/model/model.onnx

The folder needs no code of ours: transformers.pipeline("token-classification", model=DIR,
aggregation_strategy=...) loads it ("first", or "average" for a checkpoint trained with word_pooling mean).
The ONNX graph takes input_ids and attention_mask (batch x length, both dynamic) and gives one logits
tensor per layer, named by the layer; Tagger.load_onnx(checkpoint) runs it on onnxruntime. For a checkpoint
with roles it also gives the encoder's last hidden state (named HIDDEN_KEY), from which the Tagger scores
event arguments with the argument head outside the graph (models/onnx_runtime.py). The standalone folder
is a plain token classifier of one layer: it has no arguments.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from models.errors import reports_user_errors, user_path
from models.names import ONNX_FILE

# torch, transformers and the checkpoint code are imported in the functions that use them, so that `--help`
# answers without waiting for them

ONNX_OPSET = 18
# transformers.pipeline's aggregation_strategy closest to each word_pooling: "average" averages the pieces'
# probabilities where the Tagger averages their logits, so a few words may differ
PIPELINE_AGGREGATION = {"first": "first", "mean": "average"}


def pipeline_aggregation(checkpoint: Path) -> str:
    """The aggregation_strategy to load a standalone export of `checkpoint` with."""
    from models.checkpoint import read_info

    return PIPELINE_AGGREGATION[read_info(checkpoint).settings.word_pooling]


def export_layer(checkpoint: Path, layer: str, out_dir: Path) -> Path:
    from transformers import AutoModelForTokenClassification

    from models.checkpoint import CheckpointError, load_checkpoint

    model, tokenizer, _ = load_checkpoint(checkpoint)
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
        raise CheckpointError(
            f"encoder weights do not fit {type(standalone).__name__}: missing {missing}, unexpected {unexpected}"
        )
    classifier = getattr(standalone, "classifier", None)
    if classifier is None or classifier.weight.shape != model.heads[layer].weight.shape:
        raise CheckpointError(
            f"{type(standalone).__name__} has no linear `classifier` of shape "
            f"{tuple(model.heads[layer].weight.shape)} to take the {layer} head"
        )
    classifier.load_state_dict(model.heads[layer].state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    standalone.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def export_onnx(checkpoint: Path, out_file: Path | None = None, opset: int = ONNX_OPSET) -> Path:
    """Write the encoder and all tagging heads as one ONNX graph (default: checkpoint/model.onnx, where
    Tagger.load_onnx looks), with the hidden state as an extra output for a checkpoint with roles; batch and
    sequence length are dynamic."""
    import torch

    from models.checkpoint import load_checkpoint
    from models.onnx_runtime import INPUT_NAMES, GraphOutputs

    model, tokenizer, _ = load_checkpoint(checkpoint)
    out_file = Path(out_file) if out_file is not None else Path(checkpoint) / ONNX_FILE
    # sdpa attention exports as a softmax guarded against NaN (Where, IsNaN: a tenth of onnxruntime's time);
    # eager attention computes the same thing as plain MatMul, Add, Softmax
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    wrapper = GraphOutputs(model).eval()
    # two rows of different lengths, so padding is traced too
    sample = tokenizer(["a b c d e f", "a"], padding=True, return_tensors="pt")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # both inputs share their axes, so the exporter keeps one name per axis and says so: not a problem
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")  # inside torch.export
        torch.onnx.export(
            wrapper,
            (sample["input_ids"], sample["attention_mask"]),
            str(out_file),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=wrapper.output_names,
            opset_version=opset,
            dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}),
            external_data=False,
            verbose=False,
        )
    return out_file


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.export",
        description="Write one tagging layer of a checkpoint as a standalone transformers token-classification "
        "model (config with id2label, model.safetensors, tokenizer) loadable with no code of ours, or the "
        "whole model (encoder + every head) as an ONNX graph for onnxruntime. Event arguments need the "
        "Tagger: the ONNX graph serves them to Tagger.load_onnx, the standalone model has none.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint folder (runs/<name>/model)")
    parser.add_argument("--layer", default="entities", help="which layer to export (default: entities)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=Path, help="output folder of the standalone token-classification model")
    target.add_argument(
        "--onnx",
        type=Path,
        metavar="FILE",
        help=f"write the encoder and every head as one ONNX graph (opset {ONNX_OPSET}) to FILE "
        f"instead; put it at CHECKPOINT/{ONNX_FILE} for Tagger.load_onnx to find it",
    )
    args = parser.parse_args(argv)
    from models.checkpoint import read_info

    with user_path(args.onnx or args.to):  # e.g. a file in the way of the folder, or no permission to write there
        if args.onnx is not None:
            out = export_onnx(args.checkpoint, args.onnx)
        else:
            out = export_layer(args.checkpoint, args.layer, args.to)
    roles = read_info(args.checkpoint).settings.roles
    if args.onnx is not None:
        hidden = " (and the hidden state the Tagger scores event arguments from)" if roles else ""
        print(f"exported all layers{hidden} to {out}")
    else:
        print(
            f'exported layer {args.layer} to {out}; load it with transformers.pipeline("token-classification", '
            f'model="{out}", aggregation_strategy="{pipeline_aggregation(args.checkpoint)}")'
        )
        if roles:
            print(
                f"it tags {args.layer} only: the checkpoint's event arguments ({', '.join(roles)}) are not in it; "
                f"they need the Tagger (Tagger.load, or Tagger.load_onnx with the --onnx graph)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
