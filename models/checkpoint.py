"""What a checkpoint is, on disk.

A folder that plain transformers reads (`AutoModel.from_pretrained(dir)` gives the encoder,
`AutoTokenizer.from_pretrained(dir)` the tokenizer), plus two files of ours:
  heads.safetensors  one linear head per layer
  tagger.json        layers and their labels, normalisation, window and overlap, and what the run measured
Weights are safetensors only; remote code is never trusted.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from models.modeling import MultiHeadTagger

TAGGER_FILE = "tagger.json"
HEADS_FILE = "heads.safetensors"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint folder that is missing files or whose files disagree."""


def save_checkpoint(model: MultiHeadTagger, tokenizer: PreTrainedTokenizerFast, out_dir: Path, info: dict) -> None:
    """Write the model, tokenizer and `info` (normalisation, max_length, overlap, metrics ...) to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    heads = {f"{name}.{key}": tensor.detach().contiguous().cpu()
             for name, head in model.heads.items() for key, tensor in head.state_dict().items()}
    save_file(heads, str(out_dir / HEADS_FILE))
    meta = {"format": FORMAT_VERSION, "layers": model.layers, "loss_weights": model.loss_weights, **info}
    (out_dir / TAGGER_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_info(path: Path) -> dict:
    path = Path(path)
    meta_file = path / TAGGER_FILE
    if not meta_file.is_file():
        hint = " (a standalone export? load it with transformers.pipeline)" if (path / "config.json").is_file() else ""
        raise CheckpointError(f"{path} is not a tagger checkpoint: {TAGGER_FILE} is missing{hint}")
    try:
        info = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{meta_file}:{err.lineno}: invalid JSON: {err.msg}") from None
    for key in ("layers", "normalisation", "max_length", "overlap"):
        if key not in info:
            raise CheckpointError(f"{meta_file}: key {key!r} is missing")
    return info


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[MultiHeadTagger, PreTrainedTokenizerFast, dict]:
    """Model (in eval mode), tokenizer and info of a checkpoint folder, each file checked."""
    path = Path(path)
    info = read_info(path)
    for needed in ("config.json", "model.safetensors", HEADS_FILE):
        if not (path / needed).is_file():
            raise CheckpointError(f"{path}: {needed} is missing")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as err:  # transformers raises several types for a broken tokenizer folder
        raise CheckpointError(f"{path}: the tokenizer files do not load: {err}") from err
    if not tokenizer.is_fast:
        raise CheckpointError(f"{path}: tokenizer.json (a fast tokenizer) is missing")
    try:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(path))
        weights = load_file(str(path / "model.safetensors"))
        heads = load_file(str(path / HEADS_FILE))
    except (OSError, SafetensorError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: weights do not load (truncated or corrupted?): {err}") from err
    model = MultiHeadTagger(encoder, info["layers"], loss_weights=info.get("loss_weights"))  # drops any pooler
    # strict load: every encoder weight must come from the file, never from random initialisation
    try:
        missing, unexpected = model.encoder.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise CheckpointError(f"{path}/model.safetensors does not fit config.json: {err}") from err
    unexpected = [key for key in unexpected if not key.startswith("pooler.")]
    if missing or unexpected:
        raise CheckpointError(f"{path}/model.safetensors does not fit config.json: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    for name, labels in info["layers"].items():
        weight = heads.get(f"{name}.weight")
        if weight is None:
            raise CheckpointError(f"{path / HEADS_FILE}: no head for layer {name!r}")
        if weight.shape[0] != len(labels):
            raise CheckpointError(
                f"{path}: layer {name!r} lists {len(labels)} labels in {TAGGER_FILE} but its head has {weight.shape[0]} outputs")
        model.heads[name].load_state_dict({"weight": weight, "bias": heads[f"{name}.bias"]})
    return model.to(device).eval(), tokenizer, info
