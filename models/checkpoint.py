"""What a checkpoint is, on disk.

A folder that plain transformers reads (`AutoModel.from_pretrained(dir)` gives the encoder,
`AutoTokenizer.from_pretrained(dir)` the tokenizer), plus two files of ours:
  heads.safetensors  one linear head per layer, and the argument head's weights (`arguments.*`) if it has one
  tagger.json        layers and their labels, normalisation, window and overlap, word pooling, what the run
                     measured, and the sha256 of both weight files (a corrupted byte fails the load instead
                     of changing predictions)
Weights are safetensors only (a pickle file is refused, never unpickled); remote code is never trusted.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from models.arguments import ARGUMENT_KEY, roles_problem
from models.labels import TagError, split_tag
from models.modeling import WORD_POOLINGS, MultiHeadTagger

TAGGER_FILE = "tagger.json"
HEADS_FILE = "heads.safetensors"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = 1
# Weight formats that torch.load would unpickle (and so could run code): never loaded, named when found.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# The encoder's config.json names this as its one label: transformers' token-classification classes (and so
# pipeline("token-classification", model=checkpoint)) add a random head to the encoder, and every word it tags then
# says what to use instead of LABEL_0 and LABEL_1. AutoModel ignores labels.
NOT_A_CLASSIFIER = "NOT A TOKEN CLASSIFIER: tag with models.Tagger, or export a layer with python -m train.export"


class CheckpointError(ValueError):
    """A checkpoint folder that is missing files or whose files disagree."""


def save_checkpoint(model: MultiHeadTagger, tokenizer: PreTrainedTokenizerFast, out_dir: Path, info: dict) -> None:
    """Write the model, tokenizer and `info` (normalisation, max_length, overlap, metrics ...) to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out_dir, safe_serialization=True)
    _label_as_not_a_classifier(out_dir / "config.json")
    tokenizer.save_pretrained(out_dir)
    modules = {**model.heads, **({ARGUMENT_KEY: model.argument_head} if model.argument_head is not None else {})}
    heads = {f"{name}.{key}": tensor.detach().contiguous().cpu()
             for name, head in modules.items() for key, tensor in head.state_dict().items()}
    save_file(heads, str(out_dir / HEADS_FILE))
    digests = {name: sha256(out_dir / name) for name in (WEIGHTS_FILE, HEADS_FILE)}
    roles = {"roles": model.roles} if model.roles else {}
    meta = {"format": FORMAT_VERSION, "layers": model.layers, **roles, "loss_weights": model.loss_weights, **info,
            "sha256": digests}
    (out_dir / TAGGER_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _label_as_not_a_classifier(config_file: Path) -> None:
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["id2label"], config["label2id"] = {"0": NOT_A_CLASSIFIER}, {NOT_A_CLASSIFIER: 0}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_info(path: Path) -> dict:
    path = Path(path)
    meta_file = path / TAGGER_FILE
    if not meta_file.is_file():
        if not path.exists():  # a typo: "tagger.json is missing" would send the user looking inside a folder
            raise CheckpointError(f"{path} does not exist: give the checkpoint folder, e.g. runs/NAME/model")
        if (path / "model" / TAGGER_FILE).is_file():  # a run folder keeps its checkpoint in model/
            hint = f" (a run folder? its checkpoint is {path / 'model'})"
        elif (path / "config.json").is_file():
            hint = " (a standalone export? load it with transformers.pipeline)"
        else:
            hint = ""
        raise CheckpointError(f"{path} is not a tagger checkpoint: {TAGGER_FILE} is missing{hint}")
    try:
        info = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{meta_file}:{err.lineno}: invalid JSON: {err.msg}") from None
    for key in ("layers", "normalisation", "max_length", "overlap"):
        if key not in info:
            raise CheckpointError(f"{meta_file}: key {key!r} is missing")
    if not isinstance(info["layers"], dict) or not info["layers"]:
        raise CheckpointError(f"{meta_file}: 'layers' must map each layer to its labels, got {info['layers']!r}")
    if info.get("word_pooling", "first") not in WORD_POOLINGS:
        raise CheckpointError(f"{meta_file}: word_pooling must be one of {WORD_POOLINGS}, got {info['word_pooling']!r}")
    context = info.get("context", 0)
    if not isinstance(context, int) or isinstance(context, bool) or context < 0:
        raise CheckpointError(f"{meta_file}: context must be a whole number of pieces >= 0, got {context!r}")
    problem = roles_problem(info.get("roles", []), info["layers"])
    if problem:
        raise CheckpointError(f"{meta_file}: {problem}")
    for layer, labels in info["layers"].items():
        if not isinstance(labels, list) or not labels or len(set(labels)) != len(labels):
            raise CheckpointError(f"{meta_file}: layer {layer!r} needs a list of distinct labels, got {labels!r}")
        try:
            for label in labels:
                split_tag(label)
        except (TagError, TypeError) as err:
            raise CheckpointError(f"{meta_file}: layer {layer!r}: {err}") from None
    return info


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """A checkpoint's fast tokenizer, from its tokenizer.json and nothing else: without that file transformers
    would rebuild one from other files (vocab.txt, ...) with its own defaults, so it is required."""
    if not (path / TOKENIZER_FILE).is_file():
        raise CheckpointError(f"{path}: {TOKENIZER_FILE} is missing")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # transformers raises several types for a broken tokenizer folder
        raise CheckpointError(f"{path}: the tokenizer files do not load: {err}") from err
    if not tokenizer.is_fast:
        raise CheckpointError(f"{path}: {TOKENIZER_FILE} (a fast tokenizer) does not load as one")
    return tokenizer


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[MultiHeadTagger, PreTrainedTokenizerFast, dict]:
    """Model (in eval mode), tokenizer and info of a checkpoint folder, each file checked."""
    path = Path(path)
    info = read_info(path)
    if not (path / WEIGHTS_FILE).is_file():
        pickled = sorted(file.name for file in path.iterdir() if file.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise CheckpointError(f"{path}: {WEIGHTS_FILE} is missing; only safetensors weights are loaded, never "
                                  f"pickle files such as {pickled} (unpickling can run code)")
    for needed in ("config.json", WEIGHTS_FILE, HEADS_FILE):
        if not (path / needed).is_file():
            raise CheckpointError(f"{path}: {needed} is missing")
    tokenizer = load_tokenizer(path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        encoder = AutoModel.from_config(config, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}/config.json does not load: {err}") from err
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and info["max_length"] > positions:
        raise CheckpointError(f"{path}: {TAGGER_FILE} sets max_length {info['max_length']}, but the encoder has only "
                              f"{positions} positions (config.json max_position_embeddings)")
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
        heads = load_file(str(path / HEADS_FILE))
    except (OSError, SafetensorError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: weights do not load (truncated or corrupted?): {err}") from err
    model = MultiHeadTagger(encoder, info["layers"], loss_weights=info.get("loss_weights"),
                            roles=info.get("roles"))  # drops any pooler
    # strict load: every encoder weight must come from the file, never from random initialisation
    # assign: the loaded tensors become the parameters instead of being copied into the randomly initialised
    # ones, so peak memory holds the weights once, not twice (cast first: assign would keep the file's dtype)
    dtype = next(model.encoder.parameters()).dtype
    weights = {key: value.to(dtype) if value.is_floating_point() else value for key, value in weights.items()}
    try:
        missing, unexpected = model.encoder.load_state_dict(weights, strict=False, assign=True)
    except RuntimeError as err:  # shape mismatch
        raise CheckpointError(f"{path}/{WEIGHTS_FILE} does not fit config.json: {err}") from err
    unexpected = [key for key in unexpected if not key.startswith("pooler.")]
    if missing or unexpected:
        raise CheckpointError(f"{path}/{WEIGHTS_FILE} does not fit config.json: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    for name, labels in info["layers"].items():
        weight = heads.get(f"{name}.weight")
        if weight is None:
            raise CheckpointError(f"{path / HEADS_FILE}: no head for layer {name!r}")
        if weight.shape[0] != len(labels):
            raise CheckpointError(
                f"{path}: layer {name!r} lists {len(labels)} labels in {TAGGER_FILE} but its head has {weight.shape[0]} outputs")
        try:
            model.heads[name].load_state_dict({"weight": weight, "bias": heads[f"{name}.bias"]})
        except (KeyError, RuntimeError) as err:  # no bias, or a head made for another hidden size
            raise CheckpointError(f"{path / HEADS_FILE}: the head of layer {name!r} does not fit: {err}") from err
    if model.argument_head is not None:
        prefix = f"{ARGUMENT_KEY}."
        weights = {key[len(prefix):]: value for key, value in heads.items() if key.startswith(prefix)}
        try:
            model.argument_head.load_state_dict(weights)
        except RuntimeError as err:  # missing, unexpected or misshapen weights
            raise CheckpointError(f"{path / HEADS_FILE}: the argument head does not fit {TAGGER_FILE}'s layers and "
                                  f"roles: {err}") from err
    # last: a file that parses and fits may still have changed since it was saved (checkpoints before the
    # digests were recorded have none to check)
    recorded = info.get("sha256", {})
    for name in (WEIGHTS_FILE, HEADS_FILE):
        if name in recorded and sha256(path / name) != recorded[name]:
            raise CheckpointError(f"{path}/{name} is corrupted: its sha256 differs from the one recorded in "
                                  f"{TAGGER_FILE} when it was saved")
    return model.to(device).eval(), tokenizer, info
