"""train.soup: the element-wise mean of several checkpoints' weights, refused for checkpoints that do not match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.checkpoint import TAGGER_FILE, CheckpointError, load_checkpoint, read_info
from models.tagger import Tagger
from train.config import load_config
from train.soup import main, soup

CONFIGS = Path(__file__).parents[1] / "configs"
pytestmark = pytest.mark.slow  # every test averages trained tiny checkpoints (conftest.tiny_run, seed7_run)


@pytest.fixture(scope="module")
def seed7_run(tiny_data_root, tmp_path_factory) -> Path:
    from train.run import run

    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        CONFIGS / "tiny.yaml", [f"data_root={tiny_data_root}", f"output_dir={out}", "seed=7", "training.max_steps=6"]
    )
    run(config, command="python -m train --config configs/tiny.yaml seed=7")
    return out / "tiny" / "model"


def _edit_settings(checkpoint: Path, to: Path, **changes) -> Path:
    copy = shutil.copytree(checkpoint, to)
    info = json.loads((copy / TAGGER_FILE).read_text(encoding="utf-8"))
    info["settings"].update(changes)
    (copy / TAGGER_FILE).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    return copy


def test_the_soup_is_the_mean_of_its_ingredients(tiny_run: Path, seed7_run: Path, tmp_path: Path):
    out = soup([tiny_run / "model", seed7_run], tmp_path / "soup" / "model")
    a, _, _ = load_checkpoint(tiny_run / "model")
    b, _, _ = load_checkpoint(seed7_run)
    souped, _, info = load_checkpoint(out)  # also checks the recorded sha256 of the new weights
    a_state, b_state, souped_state = a.state_dict(), b.state_dict(), souped.state_dict()
    assert set(souped_state) == set(a_state)
    differing = [
        key for key in a_state if a_state[key].is_floating_point() and not torch.equal(a_state[key], b_state[key])
    ]
    assert "heads.entities.weight" in differing and len(differing) > 10  # two seeds: the mean is a new model
    for key in differing:
        torch.testing.assert_close(souped_state[key], (a_state[key] + b_state[key]) / 2)

    provenance = info.provenance
    assert provenance["run"] == "soup" and provenance["encoder"] == "tiny:bert"
    assert [ingredient["checkpoint"] for ingredient in provenance["soup"]] == [str(tiny_run / "model"), str(seed7_run)]
    assert provenance["soup"][1]["command"] == "python -m train --config configs/tiny.yaml seed=7"
    assert provenance["soup"][1]["sha256"] == read_info(seed7_run).sha256
    assert "metrics" not in provenance  # what the ingredients measured is not the soup's
    assert info.settings == read_info(tiny_run / "model").settings
    assert Tagger.load(out, precision="fp32")("قال محمد في دمشق").text == "قال محمد في دمشق"


def test_the_model_card_lists_the_ingredients(tiny_run: Path, seed7_run: Path, tmp_path: Path):
    from eval.model_card import write_model_card

    out = tmp_path / "soup" / "model"
    assert main(["--to", str(out), str(tiny_run / "model"), str(seed7_run)]) == 0
    card = write_model_card(out).read_text(encoding="utf-8")
    assert "The mean of the weights of 2 checkpoints" in card
    assert f"python -m train.soup --to {out}" in card
    assert "python -m train --config configs/tiny.yaml seed=7" in card


@pytest.mark.parametrize(
    "change", [{"word_pooling": "mean"}, {"max_length": 32}, {"normalisation": "none"}, {"context": 8}]
)
def test_checkpoints_that_differ_are_refused(tiny_run: Path, seed7_run: Path, tmp_path: Path, change: dict):
    other = _edit_settings(seed7_run, tmp_path / "other", **change)
    [key] = change
    with pytest.raises(CheckpointError, match=rf"cannot average .*differ in '{key}'"):
        soup([tiny_run / "model", other], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_checkpoints_whose_labels_differ_are_refused(tiny_run: Path, seed7_run: Path, tmp_path: Path):
    layers = read_info(seed7_run).settings.layers
    entities = layers["entities"]
    swapped = [entities[0], entities[2], entities[1], *entities[3:]]  # same labels, another order: other head rows
    other = _edit_settings(seed7_run, tmp_path / "other", layers={**layers, "entities": swapped})
    with pytest.raises(CheckpointError, match="differ in 'layers'"):
        soup([tiny_run / "model", other], tmp_path / "soup")


def test_a_different_tokenizer_is_refused(tiny_run: Path, seed7_run: Path, tmp_path: Path):
    other = shutil.copytree(seed7_run, tmp_path / "other")
    tokenizer = json.loads((other / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    first, second = list(vocab)[-2:]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (other / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CheckpointError, match="tokenizer.json differ"):
        soup([tiny_run / "model", other], tmp_path / "soup")


def test_bad_ingredient_lists_are_refused(tiny_run: Path, tmp_path: Path, capsys):
    with pytest.raises(ValueError, match="at least two"):
        soup([tiny_run / "model"], tmp_path / "soup")
    with pytest.raises(ValueError, match="listed twice"):
        soup([tiny_run / "model", tiny_run / "model"], tmp_path / "soup")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["--to", str(tmp_path / "taken"), str(tiny_run / "model"), str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["--to", str(tmp_path / "new"), str(tiny_run / "model"), str(tmp_path)]) == 2
    assert "is not a tagger checkpoint" in capsys.readouterr().err
