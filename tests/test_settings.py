"""TaggerSettings: every setting checked once, by the one validator that run configs and tagger.json both go
through; tagger.json keeps settings and provenance apart, and format 1 (one flat mapping) still loads."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from models.checkpoint import FORMAT_VERSION, HEADS_FILE, TAGGER_FILE, CheckpointError, read_info
from models.labels import bio_labels
from models.settings import SettingsError, TaggerSettings
from models.tagger import Tagger
from train.config import ConfigError, load_config

CONFIGS = Path(__file__).parents[1] / "configs"
LAYERS = {"entities": bio_labels(["PERS", "LOC"]), "events": bio_labels(["Conflict.Attack"])}
GOOD = {"layers": LAYERS, "normalisation": "basic", "max_length": 24, "overlap": 4}
TEXTS = ["أعلن الجيش السوري في دمشق أن القوات هاجمت المدينة. وقال محمد علي إن الرئيس زار حلب", "قال محمد في دمشق"]


def _error(**changes) -> str:
    with pytest.raises(SettingsError) as info:
        TaggerSettings(**{**GOOD, **changes})
    return str(info.value)


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"layers": {}}, "'layers' must map each layer to its labels, got {}"),
        ({"layers": ["entities"]}, "'layers' must map each layer to its labels, got ['entities']"),
        ({"layers": {"entities": ["O", "B-PERS", "B-PERS"]}}, "layer 'entities' needs a list of distinct labels"),
        ({"layers": {"entities": "PERS"}}, "layer 'entities' needs a list of distinct labels, got 'PERS'"),
        ({"layers": {"entities": ["O", "PERS"]}}, "layer 'entities': tag 'PERS' is not O, B-TYPE or I-TYPE"),
        (
            {"roles": ["Agent", "Agent"]},
            "roles must be a list of distinct role names (not 'none'), got ['Agent', 'Agent']",
        ),
        ({"roles": ["none"]}, "roles must be a list of distinct role names"),
        ({"roles": "Agent"}, "roles must be a list of distinct role names"),
        (
            {"roles": ["Agent"], "layers": {"events": LAYERS["events"]}},
            "roles link events to entities, so both must be layers; the layers are ['events']",
        ),
        ({"normalisation": "farasa"}, "normalisation must be one of ['arabert_v02', 'basic', 'none'], got 'farasa'"),
        ({"max_length": 0}, "max_length must be a whole number of pieces > 0, got 0"),
        ({"max_length": "128"}, "max_length must be a whole number of pieces > 0, got '128'"),
        ({"overlap": -1}, "overlap must be a whole number of pieces >= 0, got -1"),
        ({"context": -1}, "context must be a whole number of pieces from 0 to under half of max_length (24), got -1"),
        ({"context": 12}, "context must be a whole number of pieces from 0 to under half of max_length (24), got 12"),
        ({"context": 1.5}, "got 1.5"),
        ({"context": True}, "got True"),
        ({"context": "4"}, "got '4'"),
        ({"word_pooling": "max"}, "word_pooling must be one of ('first', 'mean'), got 'max'"),
        (
            {"loss_weights": {"events": -1}},
            "loss_weights must map layers (or 'arguments') to numbers >= 0, got {'events': -1}",
        ),
        ({"loss_weights": {"events": "high"}}, "loss_weights must map layers"),
    ],
)
def test_each_bad_setting_is_named_with_its_value(changes, says):
    assert says in _error(**changes)


def test_good_settings_are_frozen_copies_with_every_loss_weighted():
    labels = list(LAYERS["entities"])
    settings = TaggerSettings(
        **{**GOOD, "layers": {**LAYERS, "entities": labels}},
        roles=["Agent"],
        loss_weights={"events": 0.5, "arguments": 0.1, "gone": 2.0},
    )
    labels.append("B-ORG")  # the caller's list is not the settings' labels
    assert settings.layers["entities"] == tuple(LAYERS["entities"]) and settings.roles == ("Agent",)
    # a weight for a layer the run lacks is dropped (a config may weight a layer an override removed)
    assert settings.loss_weights == {"entities": 1.0, "events": 0.5, "arguments": 0.1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_length = 512
    assert dataclasses.replace(settings, roles=()).loss_weights == {"entities": 1.0, "events": 0.5}
    with pytest.raises(SettingsError, match="word_pooling"):  # a changed copy is checked like a new one
        dataclasses.replace(settings, word_pooling="last")
    assert TaggerSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_from_dict_names_an_unknown_or_missing_setting():
    with pytest.raises(SettingsError, match=r"unknown setting 'max_lenght'; the settings are \['layers', "):
        TaggerSettings.from_dict({**GOOD, "max_lenght": 24})
    with pytest.raises(SettingsError, match="setting 'overlap' is missing"):
        TaggerSettings.from_dict({key: value for key, value in GOOD.items() if key != "overlap"})
    with pytest.raises(SettingsError, match="settings must be a mapping"):
        TaggerSettings.from_dict(None)


# --- a run config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, says",
    [
        ("normalisation=farasa", "normalisation must be one of ['arabert_v02', 'basic', 'none'], got 'farasa'"),
        ("max_length=0", "max_length must be a whole number of pieces > 0, got 0"),
        ("overlap=-1", "overlap must be a whole number of pieces >= 0, got -1"),
        ("context=12", "context must be a whole number of pieces from 0 to under half of max_length (24), got 12"),
        ("word_pooling=max", "word_pooling must be one of ('first', 'mean'), got 'max'"),
        ("roles=[Agent]", "roles link events to entities, so both must be layers; the layers are ['entities']"),
        (
            "loss_weights.entities=-1",
            "loss_weights must map layers (or 'arguments') to numbers >= 0, got {'entities': -1}",
        ),
        ("layers.entities=null", "'layers' must map each layer to its labels, got {}"),
    ],
)
def test_a_bad_setting_in_a_run_config_is_named_after_the_file(override, says):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "tiny.yaml", [override])
    assert str(info.value) == f"{CONFIGS / 'tiny.yaml'}: {says}"


def test_duplicate_types_in_a_run_config_are_a_config_error():
    with pytest.raises(ConfigError, match=re.escape(f"{CONFIGS / 'tiny.yaml'}: duplicate entity types")):
        load_config(CONFIGS / "tiny.yaml", ["layers.entities=[PERS, PERS]"])


# --- tagger.json ------------------------------------------------------------------------------------


def _write_meta(folder: Path, meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TAGGER_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return folder


def test_a_bad_setting_in_tagger_json_is_the_validators_error_after_the_file(tmp_path):
    settings = TaggerSettings(**GOOD).to_dict()
    folder = _write_meta(
        tmp_path / "model",
        {"format": FORMAT_VERSION, "settings": {**settings, "overlap": -4}, "provenance": {}, "sha256": {}},
    )
    with pytest.raises(CheckpointError) as info:
        read_info(folder)
    assert str(info.value) == f"{folder / TAGGER_FILE}: {_error(overlap=-4)}"


@pytest.mark.parametrize(
    "meta, says",
    [
        (
            {"format": FORMAT_VERSION + 1, "settings": {}},
            f"was written by a newer version of this project (format {FORMAT_VERSION + 1}; "
            f"this code reads formats up to {FORMAT_VERSION}): upgrade",
        ),
        ({"settings": {}}, f"'format' must be a format number from 1 to {FORMAT_VERSION}, got None"),
        ({"format": "2", "settings": {}}, "'format' must be a format number"),
        ({"format": FORMAT_VERSION, "settings": {}, "context": 4}, "unknown key 'context'"),
        ({"format": FORMAT_VERSION, "settings": {}, "provenance": []}, "'provenance' must be a mapping"),
        ({"format": FORMAT_VERSION}, "settings must be a mapping"),
    ],
)
def test_a_tagger_json_of_another_layout_is_refused_clearly(tmp_path, meta, says):
    with pytest.raises(CheckpointError, match=re.escape(says)):
        read_info(_write_meta(tmp_path / "model", meta))


def test_an_early_format_1_file_gets_the_defaults_of_the_keys_it_predates(tmp_path):
    info = read_info(
        _write_meta(
            tmp_path / "model",
            {
                "format": 1,
                "layers": LAYERS,
                "loss_weights": {"entities": 1.0, "events": 1.0},
                "encoder": "tiny:bert",
                "normalisation": "basic",
                "max_length": 24,
                "overlap": 4,
                "run": "old",
            },
        )
    )
    assert info.settings == TaggerSettings(**GOOD)
    assert (info.settings.context, info.settings.word_pooling, info.settings.roles) == (0, "first", ())
    assert info.provenance == {"encoder": "tiny:bert", "run": "old"} and info.sha256 == {}


def format_1(meta: dict) -> dict:
    """A format 2 tagger.json as format 1 wrote it: one flat mapping, in that format's key order."""
    settings, provenance = meta["settings"], meta["provenance"]
    flat = {
        "format": 1,
        "layers": settings["layers"],
        "roles": settings["roles"],
        "loss_weights": settings["loss_weights"],
        "encoder": provenance["encoder"],
        "normalisation": settings["normalisation"],
        "max_length": settings["max_length"],
        "overlap": settings["overlap"],
        "context": settings["context"],
        "word_pooling": settings["word_pooling"],
    }
    return {**flat, **{key: value for key, value in provenance.items() if key != "encoder"}, "sha256": meta["sha256"]}


def test_a_format_1_checkpoint_loads_and_predicts_the_same(tiny_run: Path, tmp_path: Path):
    current = tiny_run / "model"
    old = shutil.copytree(current, tmp_path / "old")
    meta = json.loads((current / TAGGER_FILE).read_text(encoding="utf-8"))
    (old / TAGGER_FILE).write_text(json.dumps(format_1(meta), ensure_ascii=False, indent=2), encoding="utf-8")
    info, expected = read_info(old), read_info(current)
    assert info == expected
    assert info.provenance["metrics"] == meta["provenance"]["metrics"] and info.sha256 == meta["sha256"]
    assert Tagger.load(old, device="cpu", precision="fp32").tag(TEXTS) == Tagger.load(
        current, device="cpu", precision="fp32"
    ).tag(TEXTS)
    # its recorded digests are still checked
    (old / HEADS_FILE).write_bytes((old / HEADS_FILE).read_bytes()[:-1] + b"\0")
    with pytest.raises(CheckpointError, match=f"{HEADS_FILE} is corrupted"):
        Tagger.load(old, device="cpu")
