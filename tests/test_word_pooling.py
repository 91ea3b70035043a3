"""word_pooling "mean": a word scored by the mean of all its pieces' logits, the same in training and inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_tokenizer

from corpora.reader import Sentence
from models.checkpoint import CheckpointError, load_checkpoint, read_info
from models.encoding import WordEncoder
from models.labels import bio_labels
from models.modeling import IGNORE, pool_word_pieces
from models.tagger import Tagger
from train.config import ConfigError, load_config
from train.features import WORD_STARTS, Collator, build_features

CONFIGS = Path(__file__).parents[1] / "configs"
VOCAB_WORDS = ["قال", "محمد", "علي", "في", "دمشق", "هاجم", "."]
ENTITY_LABELS = bio_labels(["PERS", "LOC"])


@pytest.fixture(scope="module")
def encoder():
    return WordEncoder(tiny_tokenizer(VOCAB_WORDS), "basic", max_length=16, overlap=4)


def test_word_starts_map_every_piece_to_its_words_first_piece(encoder):
    # محمدعلي: محمد ##ع ##ل ##ي (4 pieces), دمشقي: دمشق ##ي (2 pieces)
    [[window]] = encoder.encode([["قال", "محمدعلي", "في", "دمشقي"]])
    # [CLS] قال | محمد ##ع ##ل ##ي | في | دمشق ##ي [SEP]
    assert window.word_starts == [0, 1, 2, 2, 2, 2, 6, 7, 7, 9]
    assert window.positions == [1, 2, 6, 7]


def test_word_starts_cover_context_words_of_a_long_sentence(encoder):
    words = ["محمدعلي", "في", "دمشقي", "قال"] * 6
    windows = encoder.encode([words])[0]
    assert len(windows) > 1
    for window in windows:
        assert len(window.word_starts) == len(window.input_ids)
        starts = window.word_starts
        # each start points at itself, and the pieces of a word follow their start without a gap
        assert all(starts[start] == start for start in starts)
        assert all(starts[i] in (i, starts[i - 1]) for i in range(1, len(starts)))
        assert set(window.positions) <= set(starts)


def test_pooling_is_the_mean_of_each_words_pieces():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 3)
    word_starts = torch.tensor([[0, 1, 1, 1, 4, 5], [0, 1, 2, 2, 4, 4]])
    pooled = pool_word_pieces(logits, word_starts)
    assert torch.allclose(pooled[0, 1], logits[0, 1:4].mean(0))
    assert torch.allclose(pooled[0, 4], logits[0, 4])
    assert torch.allclose(pooled[1, 2], logits[1, 2:4].mean(0))
    assert torch.allclose(pooled[1, 4], logits[1, 4:6].mean(0))
    assert torch.allclose(pooled[0, 0], logits[0, 0])
    assert pooled.dtype == torch.float32


def test_mean_features_carry_word_starts_and_first_piece_labels(encoder):
    sentence = Sentence(("قال", "محمدعلي", "في", "دمشقي"), {"entities": ("O", "B-PERS", "O", "B-LOC")})
    [first], _ = build_features([sentence], encoder, {"entities": ENTITY_LABELS})
    [mean], _ = build_features([sentence], encoder, {"entities": ENTITY_LABELS}, word_pooling="mean")
    assert WORD_STARTS not in first
    assert mean[WORD_STARTS] == [0, 1, 2, 2, 2, 2, 6, 7, 7, 9]
    assert mean["labels_entities"] == first["labels_entities"]
    assert [index for index, label in enumerate(mean["labels_entities"]) if label != IGNORE] == [1, 2, 6, 7]


def test_collator_pads_word_starts_with_positions_of_their_own():
    batch = Collator(pad_id=0)(
        [
            {"input_ids": [2, 5, 6, 3], WORD_STARTS: [0, 1, 1, 3], "window_index": 0},
            {"input_ids": [2, 5, 3], WORD_STARTS: [0, 1, 2], "window_index": 1},
        ]
    )
    assert batch[WORD_STARTS].tolist() == [[0, 1, 1, 3], [0, 1, 2, 3]]


def test_an_unknown_pooling_is_a_config_error():
    with pytest.raises(ConfigError, match="word_pooling must be one of"):
        load_config(CONFIGS / "tiny.yaml", ["word_pooling=max"])


@pytest.fixture(scope="module")
def mean_run(tiny_data_root, tmp_path_factory) -> Path:
    from train.run import run

    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        CONFIGS / "tiny.yaml",
        [f"data_root={tiny_data_root}", f"output_dir={out}", "word_pooling=mean", "training.max_steps=6"],
    )
    run(config)
    return out / "tiny" / "model"


@pytest.mark.slow
def test_a_mean_run_records_its_pooling(mean_run: Path, tiny_run: Path, tmp_path: Path):
    import shutil

    from eval.model_card import write_model_card

    assert read_info(mean_run).settings.word_pooling == "mean"
    assert Tagger.load(mean_run, precision="fp32").settings.word_pooling == "mean"
    assert "mean of its pieces' logits" in write_model_card(mean_run).read_text(encoding="utf-8")
    first = shutil.copytree(tiny_run / "model", tmp_path / "first")
    assert read_info(first).settings.word_pooling == "first"
    assert "labelled on its first piece" in write_model_card(first).read_text(encoding="utf-8")


@pytest.mark.slow
def test_tagger_scores_words_as_the_training_forward_does(mean_run: Path):
    """The Tagger pools after the model (so every backend pools alike); its word probabilities must equal the
    ones the training forward computes with word_starts."""
    tagger = Tagger.load(mean_run, precision="fp32", decoding="argmax")
    words = ["أعلن", "الجيشالسوري", "في", "دمشقي"]  # one window of the tiny config's 24 pieces
    [window] = tagger.encoder.encode([words])[0]
    assert len(window.input_ids) > len(words) + 2  # some words have several pieces, else nothing is tested
    model, _, _ = load_checkpoint(mean_run)
    with torch.no_grad():
        outputs = model(
            torch.tensor([window.input_ids]),
            torch.ones(1, len(window.input_ids), dtype=torch.long),
            word_starts=torch.tensor([window.word_starts]),
        )
        first_piece = model(torch.tensor([window.input_ids]), torch.ones(1, len(window.input_ids), dtype=torch.long))
    [predicted] = tagger.predict_words([words])
    for layer, labels in tagger.layers.items():
        probabilities = outputs[layer][0, window.positions].softmax(-1)
        expected = probabilities.max(-1)
        assert predicted.tags[layer] == [labels[index] for index in expected.indices.tolist()]
        assert predicted.scores[layer] == pytest.approx(expected.values.tolist(), abs=1e-5)
        # and pooling changed something: the first pieces alone give other scores
        alone = first_piece[layer][0, window.positions].softmax(-1).max(-1).values
        assert not torch.allclose(alone, expected.values, atol=1e-4)


@pytest.mark.slow
def test_a_checkpoint_with_an_unknown_pooling_is_refused(mean_run: Path, tmp_path: Path):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(mean_run, broken)
    info = json.loads((broken / "tagger.json").read_text(encoding="utf-8"))
    info["settings"]["word_pooling"] = "max"
    (broken / "tagger.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(CheckpointError, match="word_pooling must be one of"):
        Tagger.load(broken)


@pytest.mark.slow
def test_a_standalone_export_of_a_mean_run_names_the_pipeline_aggregation(
    mean_run: Path, tiny_run: Path, tmp_path: Path, capsys
):
    from transformers import pipeline

    from train.export import main as export
    from train.export import pipeline_aggregation

    assert pipeline_aggregation(tiny_run / "model") == "first"
    assert pipeline_aggregation(mean_run) == "average"
    assert export(["--checkpoint", str(mean_run), "--layer", "entities", "--to", str(tmp_path / "entities")]) == 0
    assert 'aggregation_strategy="average"' in capsys.readouterr().out
    tagged = pipeline("token-classification", model=str(tmp_path / "entities"), aggregation_strategy="average")
    assert isinstance(tagged("أعلن محمد في دمشق"), list)
