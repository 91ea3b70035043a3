"""Run configs: YAML files in configs/, every key known here, `key.sub=value` overrides on the command line."""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path

import yaml

from models.errors import UserError
from models.labels import TYPE_SETS, bio_labels
from models.settings import TaggerSettings

# Every key a run config may set, with its default. A key not listed here is an error.
DEFAULTS: dict = {
    "name": None,  # run folder: <output_dir>/<name>
    "output_dir": "runs",
    "seed": 42,
    "data_root": None,  # None: $ARABIC_NEWS_DATA, else ../shared/data
    "encoder": None,  # Hub id, local folder, offline:multilingual-e5-small, or tiny:bert (tests)
    "normalisation": "basic",  # none | basic | arabert_v02 (per word, see models/text.py)
    "max_length": 128,  # pieces per window, specials included
    "overlap": 32,  # pieces shared by consecutive windows of a long sentence
    "context": 0,  # pieces of the neighbouring text read (not tagged) on each side of a window (models/encoding.py)
    "word_pooling": "first",  # a word's logits: its first piece's | the mean of its pieces' (models/modeling.py)
    # the word-embedding matrix: train | freeze | seen (train only the rows of pieces the training data uses,
    # see train/embeddings.py; all of a 250k-row matrix doubles a CPU step)
    "embeddings": "train",
    # layer -> its types: a list, or the name of a set in models/labels.py TYPE_SETS (entities: anercorp)
    "layers": {},
    # roles of event arguments, e.g. [Agent, Patient, Place]: adds the argument head, which links `events` spans
    # to `entities` spans (models/arguments.py); empty: none
    "roles": [],
    "loss_weights": {},  # layer (or `arguments`) -> weight of its loss (default 1)
    "data": {"train": [], "dev": None, "test": None},  # corpus:split names from configs/corpora.yaml
    "training": {
        "epochs": 3,
        "batch_size": 16,
        "gradient_accumulation_steps": 1,
        "eval_batch_size": 64,
        "learning_rate": 5e-5,
        "head_learning_rate": None,  # None: same as learning_rate
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "dropout": 0.1,
        "device": "auto",  # auto (a GPU when torch sees one) | cuda (refuse to start without one) | cpu
        "precision": "auto",  # auto (bf16 where supported, else fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
        # resumable state (weights, optimizer, scheduler, RNG, data position); 0: per epoch only
        "checkpoint_every_steps": 200,
        "max_steps": -1,  # > 0 stops early (tests, smoke runs)
        "logging_steps": 20,
        "threads": None,  # torch CPU threads; None leaves torch's default
    },
    "tiny": {"hidden_size": 32, "layers": 2, "heads": 2, "vocab_size": 800},  # shape of the tiny:bert test encoder
}


class ConfigError(UserError, ValueError):
    """A run config, or an override, that cannot be right."""


def _nearest(key: str, known) -> str:
    match = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {match[0]!r}?" if match else f"; known keys: {sorted(known)}"


def _merge(base: dict, update: dict, where: str, schema: dict | None = DEFAULTS) -> dict:
    """`update` merged into `base`. Keys are checked against `schema` (the DEFAULTS section): a section with
    default keys (training, data, tiny) accepts only those; a free map (layers, loss_weights) takes any key,
    and null removes one (`layers.entities=null roles=[]` trains events alone)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if schema is None and value is None:
            merged.pop(key, None)
            continue
        if schema is not None and key not in schema:
            raise ConfigError(f"{where}: unknown key {key!r}{_nearest(key, schema)}")
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            section = schema.get(key) if schema is not None else None
            section = section if isinstance(section, dict) and section else None
            merged[key] = _merge(merged[key], value, f"{where}.{key}", section)
        else:
            merged[key] = value
    return merged


class _Loader(yaml.SafeLoader):
    """YAML as PyYAML reads it, except that 1e-4 is a float (YAML 1.1 wants 1.0e-4, and reads 1e-4 as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _load_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def parse_override(text: str) -> dict:
    """`training.epochs=5` -> {"training": {"epochs": 5}} (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE (e.g. training.epochs=5)")
    dotted, raw = text.split("=", 1)
    value = _load_yaml(raw)
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def _types(value, where: str):
    """A layer's types: the list given, or the type set it names (tagger.json stores the list either way)."""
    if not isinstance(value, str):
        return value
    if value not in TYPE_SETS:
        raise ConfigError(
            f"{where}: unknown type set {value!r}; known type sets: {', '.join(TYPE_SETS)} "
            "(models/labels.py), or list the types"
        )
    return list(TYPE_SETS[value])


def load_config(path: str | Path, overrides: list[str] = ()) -> dict:
    path = Path(path)
    try:
        loaded = _load_yaml(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a run config is a mapping of keys, got {type(loaded).__name__}")
    config = _merge(DEFAULTS, loaded, str(path))
    for override in overrides:
        config = _merge(config, parse_override(override), f"override {override!r}")
    config["name"] = config["name"] or path.stem
    if not config["encoder"]:
        raise ConfigError(f"{path}: 'encoder' must be set")
    if not isinstance(config["layers"], dict):
        raise ConfigError(f"{path}: layers is a mapping of layer -> types, got {config['layers']!r}")
    config["layers"] = {layer: _types(types, f"{path}: layers.{layer}") for layer, types in config["layers"].items()}
    if not config["data"]["train"]:
        raise ConfigError(f"{path}: data.train must list at least one corpus split, e.g. [anercorp:train]")
    if config["embeddings"] not in ("train", "freeze", "seen"):
        raise ConfigError(f"{path}: embeddings must be train, freeze or seen, got {config['embeddings']!r}")
    try:
        tagger_settings(config)
    except ValueError as err:  # a SettingsError, or bio_labels' duplicate types
        raise ConfigError(f"{path}: {err}") from None
    return config


def tagger_settings(config: dict) -> TaggerSettings:
    """The settings a run of `config` trains with and records in its checkpoint: each layer's types become its
    IOB2 labels (load_config has made `layers` a mapping; a value that is not a list of types is left for
    TaggerSettings to refuse)."""
    return TaggerSettings(
        layers={
            layer: bio_labels(types) if isinstance(types, list) else types for layer, types in config["layers"].items()
        },
        roles=config["roles"],
        normalisation=config["normalisation"],
        max_length=config["max_length"],
        overlap=config["overlap"],
        context=config["context"],
        word_pooling=config["word_pooling"],
        loss_weights=config["loss_weights"],
    )
