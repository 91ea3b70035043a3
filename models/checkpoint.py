"""What a checkpoint is, on disk.

A folder that plain transformers reads (`AutoModel.from_pretrained(dir)` gives the encoder,
`AutoTokenizer.from_pretrained(dir)` the tokenizer), plus two files of ours:
  heads.safetensors  one linear head per layer, and the argument head's weights (`arguments.*`) if it has one
  tagger.json        {"format": 2, "settings": ..., "provenance": ..., "sha256": ...}: the settings that reproduce
                     its predictions (models/settings.py), the record of how it was made (encoder, data, commit,
                     command, what the run measured, a soup's ingredients), which nothing reads to predict, and the
                     sha256 of both weight files (a corrupted byte fails the load instead of changing predictions)
Weights are safetensors only (a pickle file is refused, never unpickled); remote code is never trusted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from models.arguments import ARGUMENT_KEY
from models.errors import UserError
from models.modeling import MultiHeadTagger
from models.settings import SettingsError, TaggerSettings

TAGGER_FILE = "tagger.json"
HEADS_FILE = "heads.safetensors"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
# 2: settings and provenance in sections of their own; 1: both in one flat mapping (still read)
FORMAT_VERSION = 2
SECTIONS = ("format", "settings", "provenance", "sha256")
# Weight formats that torch.load would unpickle (and so could run code): never loaded, named when found.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
# The encoder's config.json names this as its one label: transformers' token-classification classes (and so
# pipeline("token-classification", model=checkpoint)) add a random head to the encoder, and every word it tags then
# says what to use instead of LABEL_0 and LABEL_1. AutoModel ignores labels.
NOT_A_CLASSIFIER = "NOT A TOKEN CLASSIFIER: tag with models.Tagger, or export a layer with python -m train.export"


class CheckpointError(UserError, ValueError):
    """A checkpoint folder that is missing files or whose files disagree."""


@dataclass(frozen=True)
class CheckpointInfo:
    """tagger.json, read."""

    settings: TaggerSettings
    provenance: dict  # encoder, data, git_commit, run, command, metrics, train_seconds, soup: a record, never checked
    sha256: dict[str, str]  # weight file -> its digest when saved; empty for checkpoints saved before digests


def save_checkpoint(
    model: MultiHeadTagger,
    tokenizer: PreTrainedTokenizerFast,
    out_dir: Path,
    settings: TaggerSettings,
    provenance: dict,
) -> None:
    """Write the model, tokenizer, settings and provenance (encoder, data, metrics ...) to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out_dir, safe_serialization=True)
    _label_as_not_a_classifier(out_dir / "config.json")
    tokenizer.save_pretrained(out_dir)
    modules = {**model.heads, **({ARGUMENT_KEY: model.argument_head} if model.argument_head is not None else {})}
    heads = {
        f"{name}.{key}": tensor.detach().contiguous().cpu()
        for name, head in modules.items()
        for key, tensor in head.state_dict().items()
    }
    save_file(heads, str(out_dir / HEADS_FILE))
    digests = {name: sha256(out_dir / name) for name in (WEIGHTS_FILE, HEADS_FILE)}
    meta = {"format": FORMAT_VERSION, "settings": settings.to_dict(), "provenance": provenance, "sha256": digests}
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


def _from_format_1(flat: dict) -> dict:
    """A format 1 tagger.json in format 2's sections: its settings were the keys named as TaggerSettings' fields,
    the rest (but format and sha256) its provenance."""
    settings = {setting.name for setting in fields(TaggerSettings)}
    return {
        "format": FORMAT_VERSION,
        "settings": {key: value for key, value in flat.items() if key in settings},
        "provenance": {key: value for key, value in flat.items() if key not in settings | {"format", "sha256"}},
        "sha256": flat.get("sha256", {}),
    }


def read_info(path: Path) -> CheckpointInfo:
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
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{meta_file}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_file}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("format")
    if version == 1:
        meta = _from_format_1(meta)
    elif isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_file} was written by a newer version of this project (format {version}; this "
            f"code reads formats up to {FORMAT_VERSION}): upgrade it to load this checkpoint"
        )
    elif version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_file}: 'format' must be a format number from 1 to {FORMAT_VERSION}, got {version!r}"
        )
    unknown = sorted(set(meta) - set(SECTIONS))
    if unknown:
        raise CheckpointError(
            f"{meta_file}: unknown key {unknown[0]!r}; format {FORMAT_VERSION} has only {SECTIONS} "
            "(a setting belongs in 'settings')"
        )
    for section in ("provenance", "sha256"):
        if not isinstance(meta.get(section, {}), dict):
            raise CheckpointError(f"{meta_file}: {section!r} must be a mapping, got {meta[section]!r}")
    try:
        settings = TaggerSettings.from_dict(meta.get("settings"))
    except SettingsError as err:
        raise CheckpointError(f"{meta_file}: {err}") from None
    return CheckpointInfo(settings, meta.get("provenance", {}), meta.get("sha256", {}))


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


def load_checkpoint(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[MultiHeadTagger, PreTrainedTokenizerFast, CheckpointInfo]:
    """Model (in eval mode), tokenizer and info of a checkpoint folder, each file checked."""
    path = Path(path)
    info = read_info(path)
    settings = info.settings
    if not (path / WEIGHTS_FILE).is_file():
        pickled = sorted(file.name for file in path.iterdir() if file.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise CheckpointError(
                f"{path}: {WEIGHTS_FILE} is missing; only safetensors weights are loaded, never "
                f"pickle files such as {pickled} (unpickling can run code)"
            )
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
    if positions is not None and settings.max_length > positions:
        raise CheckpointError(
            f"{path}: {TAGGER_FILE} sets max_length {settings.max_length}, but the encoder has only "
            f"{positions} positions (config.json max_position_embeddings)"
        )
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
        heads = load_file(str(path / HEADS_FILE))
    except (OSError, SafetensorError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: weights do not load (truncated or corrupted?): {err}") from err
    model = MultiHeadTagger(
        encoder, settings.layers, loss_weights=settings.loss_weights, roles=settings.roles
    )  # drops any pooler
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
        raise CheckpointError(
            f"{path}/{WEIGHTS_FILE} does not fit config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, labels in settings.layers.items():
        weight = heads.get(f"{name}.weight")
        if weight is None:
            raise CheckpointError(f"{path / HEADS_FILE}: no head for layer {name!r}")
        if weight.shape[0] != len(labels):
            raise CheckpointError(
                f"{path}: layer {name!r} lists {len(labels)} labels in {TAGGER_FILE} but its head has "
                f"{weight.shape[0]} outputs"
            )
        try:
            model.heads[name].load_state_dict({"weight": weight, "bias": heads[f"{name}.bias"]})
        except (KeyError, RuntimeError) as err:  # no bias, or a head made for another hidden size
            raise CheckpointError(f"{path / HEADS_FILE}: the head of layer {name!r} does not fit: {err}") from err
    if model.argument_head is not None:
        prefix = f"{ARGUMENT_KEY}."
        weights = {key[len(prefix) :]: value for key, value in heads.items() if key.startswith(prefix)}
        try:
            model.argument_head.load_state_dict(weights)
        except RuntimeError as err:  # missing, unexpected or misshapen weights
            raise CheckpointError(
                f"{path / HEADS_FILE}: the argument head does not fit {TAGGER_FILE}'s layers and roles: {err}"
            ) from err
    # last: a file that parses and fits may still have changed since it was saved (checkpoints before the
    # digests were recorded have none to check)
    for name in (WEIGHTS_FILE, HEADS_FILE):
        if name in info.sha256 and sha256(path / name) != info.sha256[name]:
            raise CheckpointError(
                f"{path}/{name} is corrupted: its sha256 differs from the one recorded in "
                f"{TAGGER_FILE} when it was saved"
            )
    return model.to(device).eval(), tokenizer, info
