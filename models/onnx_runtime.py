"""Run a checkpoint's ONNX graph (encoder + every head, written by `python -m train.export --onnx`) on
onnxruntime, in place of the torch model: the Tagger calls it the same way and gets the same dict.

    tagger = Tagger.load_onnx("runs/x/model")  # runs/x/model/model.onnx, tokenizer and tagger.json beside it
"""
from __future__ import annotations

from pathlib import Path

import torch

from models.checkpoint import CheckpointError, load_tokenizer, read_info

ONNX_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask")


class OnnxTaggerModel:
    """Called like MultiHeadTagger (input_ids, attention_mask tensors), returns {layer: logits tensor}."""

    def __init__(self, onnx_file: str | Path, layers: list[str], threads: int | None = None):
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError("the ONNX backend needs onnxruntime: pip install -e '.[onnx]'") from err
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # the same thread count as torch (one per physical core, or OMP_NUM_THREADS), so the backends compare fairly
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        outputs = {output.name for output in self.session.get_outputs()}
        missing = [layer for layer in layers if layer not in outputs]
        if missing:
            raise CheckpointError(f"{onnx_file} has no output for layers {missing}; it has {sorted(outputs)} "
                                  f"(exported from another checkpoint?)")
        self.layers = list(layers)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        outputs = self.session.run(self.layers, feeds)
        return {layer: torch.from_numpy(logits) for layer, logits in zip(self.layers, outputs)}


def load_onnx_checkpoint(path: str | Path, onnx_file: str | Path | None = None, threads: int | None = None):
    """(OnnxTaggerModel, tokenizer, info) of a checkpoint folder; the graph defaults to path/model.onnx."""
    path = Path(path)
    info = read_info(path)
    onnx_file = Path(onnx_file) if onnx_file is not None else path / ONNX_FILE
    if not onnx_file.is_file():
        raise CheckpointError(f"{onnx_file} is missing: write it with "
                              f"python -m train.export --checkpoint {path} --onnx {onnx_file}")
    tokenizer = load_tokenizer(path)
    model = OnnxTaggerModel(onnx_file, list(info["layers"]), threads)
    return model, tokenizer, info
