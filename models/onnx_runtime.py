"""Run a checkpoint's ONNX graph (encoder + every head, written by `python -m train.export --onnx`) on
onnxruntime, in place of the torch model: the Tagger calls it the same way and gets the same dict.

    tagger = Tagger.load_onnx("runs/x/model")  # runs/x/model/model.onnx, tokenizer and tagger.json beside it

For a checkpoint with roles the graph also outputs the encoder's hidden state, and the argument head runs
beside it in torch (fp32, weights from heads.safetensors), as it does for Tagger.load: it scores (trigger,
entity) pairs of the decoded spans, which exist only after the graph has run, so it stays outside the graph.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoConfig

from models.arguments import ARGUMENT_KEY, ArgumentHead
from models.checkpoint import (
    HEADS_FILE,
    TAGGER_FILE,
    CheckpointError,
    CheckpointInfo,
    load_tokenizer,
    read_info,
    sha256,
)
from models.modeling import HIDDEN_KEY, MultiHeadTagger
from models.names import ONNX_FILE

INPUT_NAMES = ("input_ids", "attention_mask")


class GraphOutputs(torch.nn.Module):
    """The tagger with a tuple of outputs as output, what the ONNX exporter (`python -m train.export --onnx`) can
    trace: logits in layer order, then with an argument head the hidden state it scores pairs from."""

    def __init__(self, model: MultiHeadTagger):
        super().__init__()
        self.model = model
        self.output_names = [*model.layers, HIDDEN_KEY] if model.argument_head is not None else list(model.layers)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return tuple(outputs[name] for name in self.output_names)


class OnnxTaggerModel:
    """Called like MultiHeadTagger (input_ids, attention_mask tensors), returns {layer: logits tensor}, and with
    an argument head also {HIDDEN_KEY: the encoder's last hidden state}."""

    def __init__(
        self,
        onnx_file: str | Path,
        layers: list[str],
        threads: int | None = None,
        argument_head: ArgumentHead | None = None,
    ):
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError("the ONNX backend needs onnxruntime: pip install -e '.[onnx]'") from err
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # the same thread count as torch (one per physical core, or OMP_NUM_THREADS), so the backends compare fairly
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.argument_head = argument_head
        self.outputs = [*layers, HIDDEN_KEY] if argument_head is not None else list(layers)
        present = {output.name for output in self.session.get_outputs()}
        missing = [name for name in self.outputs if name not in present]
        if missing:
            raise CheckpointError(
                f"{onnx_file} has no output {missing}; it has {sorted(present)} (exported from "
                f"another checkpoint, or before it had roles? export it again)"
            )

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        outputs = self.session.run(self.outputs, feeds)
        return {name: torch.from_numpy(output) for name, output in zip(self.outputs, outputs)}


def load_argument_head(path: Path, info: CheckpointInfo) -> ArgumentHead:
    """The checkpoint's argument head (fp32, eval mode), built as MultiHeadTagger builds it (for_layers)."""
    heads_file = path / HEADS_FILE
    if not heads_file.is_file():
        raise CheckpointError(f"{path}: {HEADS_FILE} is missing")
    recorded = info.sha256.get(HEADS_FILE)
    if recorded is not None and sha256(heads_file) != recorded:
        raise CheckpointError(
            f"{heads_file} is corrupted: its sha256 differs from the one recorded in {TAGGER_FILE} when it was saved"
        )
    try:
        heads = load_file(str(heads_file))
        hidden_size = AutoConfig.from_pretrained(path, trust_remote_code=False).hidden_size
    except (OSError, SafetensorError, ValueError) as err:
        raise CheckpointError(f"{path}: the argument head does not load: {err}") from err
    head = ArgumentHead.for_layers(hidden_size, info.settings.layers, info.settings.roles)
    prefix = f"{ARGUMENT_KEY}."
    try:
        head.load_state_dict({key[len(prefix) :]: value for key, value in heads.items() if key.startswith(prefix)})
    except RuntimeError as err:  # missing, unexpected or misshapen weights
        raise CheckpointError(
            f"{heads_file}: the argument head does not fit {TAGGER_FILE}'s layers and roles: {err}"
        ) from err
    return head.float().eval()


def load_onnx_checkpoint(path: str | Path, onnx_file: str | Path | None = None, threads: int | None = None):
    """(OnnxTaggerModel, tokenizer, info) of a checkpoint folder; the graph defaults to path/model.onnx."""
    path = Path(path)
    info = read_info(path)
    onnx_file = Path(onnx_file) if onnx_file is not None else path / ONNX_FILE
    if not onnx_file.is_file():
        raise CheckpointError(
            f"{onnx_file} is missing: write it with python -m train.export --checkpoint {path} --onnx {onnx_file}"
        )
    tokenizer = load_tokenizer(path)
    argument_head = load_argument_head(path, info) if info.settings.roles else None
    model = OnnxTaggerModel(onnx_file, list(info.settings.layers), threads, argument_head)
    return model, tokenizer, info
