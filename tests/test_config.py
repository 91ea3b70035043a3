"""Run configs: every key known, defaults filled, overrides typed, mistakes named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.labels import TYPE_SETS
from train.config import DEFAULTS, ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

MINIMAL = """\
encoder: tiny:bert
layers:
  entities: [PERS, LOC]
data:
  train: [anercorp:train]
"""


def _write(tmp_path: Path, text: str, name: str = "myrun.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_filled(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL))
    assert config["encoder"] == "tiny:bert"
    assert config["layers"] == {"entities": ["PERS", "LOC"]}
    assert config["seed"] == 42
    assert config["normalisation"] == "basic"
    assert (config["max_length"], config["overlap"]) == (128, 32)
    assert config["data"] == {"train": ["anercorp:train"], "dev": None, "test": None}
    assert config["training"]["epochs"] == 3
    assert config["training"]["batch_size"] == 16
    assert config["training"]["learning_rate"] == 5e-5
    assert config["tiny"] == {"hidden_size": 32, "layers": 2, "heads": 2, "vocab_size": 800}
    assert set(config) == set(DEFAULTS)
    assert set(config["training"]) == set(DEFAULTS["training"])


def test_a_partial_section_keeps_the_other_defaults(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL + "training:\n  batch_size: 4\n"))
    assert config["training"]["batch_size"] == 4
    assert config["training"]["epochs"] == 3


def test_loading_does_not_change_the_defaults(tmp_path):
    load_config(_write(tmp_path, MINIMAL + "training:\n  epochs: 9\n"), ["data.dev=anercorp:dev"])
    assert DEFAULTS["training"]["epochs"] == 3
    assert DEFAULTS["data"] == {"train": [], "dev": None, "test": None}
    assert DEFAULTS["layers"] == {}


def test_name_defaults_to_the_file_stem(tmp_path):
    assert load_config(_write(tmp_path, MINIMAL, "arabert-run.yaml"))["name"] == "arabert-run"
    assert load_config(_write(tmp_path, "name: custom\n" + MINIMAL))["name"] == "custom"


# --- overrides -------------------------------------------------------------------------------------


def test_override_value_is_parsed_as_yaml(tmp_path):
    config = load_config(
        _write(tmp_path, MINIMAL),
        ["training.epochs=5", "data.dev=anercorp:dev", "training.threads=null", "layers={entities: [ORG]}"],
    )
    assert config["training"]["epochs"] == 5
    assert isinstance(config["training"]["epochs"], int)
    assert config["training"]["batch_size"] == 16  # the rest of the section stays
    assert config["data"]["dev"] == "anercorp:dev"
    assert config["training"]["threads"] is None
    assert config["layers"] == {"entities": ["ORG"]}


def test_later_overrides_win(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL), ["training.epochs=5", "training.epochs=2"])
    assert config["training"]["epochs"] == 2


@pytest.mark.parametrize("text, expected", [("1e-4", 1e-4), ("3E-5", 3e-5), ("5.0e-5", 5e-5), ("0.001", 0.001)])
def test_exponent_numbers_are_numbers(tmp_path, text, expected):
    # YAML 1.1 (PyYAML) reads 1e-4 as a string; a learning rate written that way must still be a float
    config = load_config(
        _write(tmp_path, MINIMAL + f"training:\n  head_learning_rate: {text}\n"), [f"training.learning_rate={text}"]
    )
    assert config["training"]["learning_rate"] == expected
    assert config["training"]["head_learning_rate"] == expected
    assert isinstance(config["training"]["learning_rate"], float)


def test_override_can_add_a_layer_and_its_weight(tmp_path):
    path = _write(tmp_path, MINIMAL + "loss_weights:\n  entities: 1.0\n")
    config = load_config(path, ["layers.events=[Conflict.Attack]", "loss_weights.events=0.5"])
    assert config["layers"] == {"entities": ["PERS", "LOC"], "events": ["Conflict.Attack"]}
    assert config["loss_weights"] == {"entities": 1.0, "events": 0.5}


# The ACE 2005 subtypes in the order the configs listed them before they named the set: the label order of
# every checkpoint trained since, so it must not change.
ACE2005 = [
    "Conflict.Attack",
    "Conflict.Demonstrate",
    "Movement.Transport",
    "Contact.Meet",
    "Contact.Phone_Write",
    "Life.Be_Born",
    "Life.Marry",
    "Life.Divorce",
    "Life.Injure",
    "Life.Die",
    "Personnel.Start_Position",
    "Personnel.End_Position",
    "Personnel.Nominate",
    "Personnel.Elect",
    "Transaction.Transfer_Ownership",
    "Transaction.Transfer_Money",
    "Business.Start_Org",
    "Business.Merge_Org",
    "Business.Declare_Bankruptcy",
    "Business.End_Org",
    "Justice.Arrest_Jail",
    "Justice.Release_Parole",
    "Justice.Trial_Hearing",
    "Justice.Charge_Indict",
    "Justice.Sue",
    "Justice.Convict",
    "Justice.Sentence",
    "Justice.Fine",
    "Justice.Execute",
    "Justice.Extradite",
    "Justice.Acquit",
    "Justice.Appeal",
    "Justice.Pardon",
]


def test_a_named_type_set_resolves_to_its_types_in_order(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("entities: [PERS, LOC]", "entities: anercorp\n  events: ace2005"))
    config = load_config(path)
    assert config["layers"] == {"entities": ["PERS", "LOC", "ORG", "MISC"], "events": ACE2005}
    # an override may name one too, and the shipped configs resolve to the same lists
    assert load_config(_write(tmp_path, MINIMAL), ["layers.events=ace2005"])["layers"]["events"] == ACE2005
    assert load_config(CONFIGS / "arabertv02.yaml")["layers"]["events"] == ACE2005


def test_an_unknown_type_set_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, MINIMAL), ["layers.events=ace2050"])
    message = str(info.value)
    assert "layers.events" in message and "'ace2050'" in message
    assert "ace2005" in message and "anercorp" in message


def test_the_ace2005_set_is_the_anercorp_events_guidelines_subtypes(real_root):
    guidelines = (real_root / "anercorp-events" / "GUIDELINES.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| ([A-Z][a-z]+\.[A-Za-z_]+) \|", guidelines, flags=re.MULTILINE)
    assert sorted(listed) == sorted(TYPE_SETS["ace2005"]) and len(listed) == 33


def test_override_without_equals_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(_write(tmp_path, MINIMAL), ["training.epochs"])


# --- mistakes are named ----------------------------------------------------------------------------


def test_unknown_key_in_the_file_names_the_nearest(tmp_path):
    path = _write(tmp_path, MINIMAL + "trainig:\n  epochs: 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "'trainig'" in message
    assert "did you mean 'training'" in message


def test_unknown_nested_key_in_the_file_names_the_nearest(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        load_config(_write(tmp_path, MINIMAL + "training:\n  batchsize: 2\n"))


def test_unknown_override_key_names_the_nearest(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, MINIMAL), ["training.epoch=3"])
    message = str(info.value)
    assert "training.epoch=3" in message
    assert "did you mean 'epochs'" in message


def test_unknown_key_far_from_any_lists_the_known_keys(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, MINIMAL + "zzzzzz: 1\n"))
    assert "known keys" in str(info.value) and "'encoder'" in str(info.value)


@pytest.mark.parametrize(
    "missing, text",
    [
        ("encoder", MINIMAL.replace("encoder: tiny:bert\n", "")),
        ("layers", MINIMAL.replace("layers:\n  entities: [PERS, LOC]\n", "")),
        ("data.train", MINIMAL.replace("data:\n  train: [anercorp:train]\n", "")),
    ],
)
def test_required_keys(tmp_path, missing, text):
    with pytest.raises(ConfigError, match=missing):
        load_config(_write(tmp_path, text))


def test_required_key_can_come_from_an_override(tmp_path):
    path = _write(tmp_path, MINIMAL.replace("encoder: tiny:bert\n", ""))
    assert load_config(path, ["encoder=tiny:bert"])["encoder"] == "tiny:bert"


def test_embeddings_must_be_train_or_freeze(tmp_path):
    with pytest.raises(ConfigError, match="embeddings"):
        load_config(_write(tmp_path, MINIMAL + "embeddings: frozen\n"))


def test_invalid_yaml_names_file_and_line(tmp_path):
    # line 3 holds a second `: ` after a value: "mapping values are not allowed here"
    path = _write(tmp_path, "encoder: tiny:bert\nname: x\nseed: 1: 2\nlayers: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:3: invalid YAML")


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


# --- the shipped configs ---------------------------------------------------------------------------

RUN_CONFIGS = sorted(path for path in CONFIGS.glob("*.yaml") if path.name != "corpora.yaml")


def test_there_are_run_configs():
    assert {"tiny.yaml", "e5-small-offline.yaml", "arabertv02.yaml"} <= {path.name for path in RUN_CONFIGS}


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config["name"]
    assert config["encoder"]
    assert config["layers"] and all(config["layers"].values())
    if path.name != "wojood.yaml":  # Wojood brings its own 21 types
        assert config["layers"]["entities"] == ["PERS", "LOC", "ORG", "MISC"]
    assert config["data"]["train"]
    assert 0 < config["overlap"] <= config["max_length"] // 2
    assert isinstance(config["training"]["learning_rate"], float)


def test_gpu_default_trains_what_the_offline_default_trains():
    # `make train` (AraBERT, GPU) is the path to the event target: it must tag both layers, with the same label
    # lists and data as `make demo`'s offline model, so the two are compared like for like
    gpu, offline = load_config(CONFIGS / "arabertv02.yaml"), load_config(CONFIGS / "e5-small-offline.yaml")
    assert gpu["layers"] == offline["layers"] and list(gpu["layers"]) == ["entities", "events"]
    assert gpu["data"] == offline["data"]
    assert gpu["encoder"] == "aubmindlab/bert-base-arabertv02"
    entities_only = load_config(CONFIGS / "arabertv02-entities.yaml")
    assert list(entities_only["layers"]) == ["entities"] and entities_only["encoder"] == gpu["encoder"]


def test_null_removes_a_layer():
    config = load_config(CONFIGS / "e5-small-offline.yaml", ["layers.entities=null", "roles=[]", "name=events-only"])
    assert list(config["layers"]) == ["events"] and len(config["layers"]["events"]) == 33
    with pytest.raises(ConfigError, match="roles link events to entities"):  # the argument head needs both
        load_config(CONFIGS / "e5-small-offline.yaml", ["layers.entities=null"])
