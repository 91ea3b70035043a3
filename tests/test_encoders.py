"""Encoders by name: a Hub id that cannot be fetched fails at once with what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.encoders import EncoderUnavailable, load_encoder


def test_unreachable_hub_model_says_how_to_proceed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderUnavailable) as caught:
        load_encoder("aubmindlab/bert-base-arabertv02")
    message = str(caught.value)
    assert "aubmindlab/bert-base-arabertv02" in message
    assert "--local-dir" in message and "configs/e5-small-offline.yaml" in message


def test_incomplete_local_folder_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderUnavailable, match="not a complete transformers checkpoint"):
        load_encoder(str(tmp_path))


def test_unknown_offline_encoder():
    with pytest.raises(EncoderUnavailable, match="offline:multilingual-e5-small"):
        load_encoder("offline:bert-large")


def test_tiny_encoder_is_deterministic():
    words = ["دمشق", "محمد", "القوات", "دمشق"]
    first, second = load_encoder("tiny:bert", {}, words), load_encoder("tiny:bert", {}, words)
    assert first[1].get_vocab() == second[1].get_vocab()


def test_config_without_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 768}')
    with pytest.raises(EncoderUnavailable, match='no "model_type"'):
        load_encoder(str(tmp_path))


class _Payload:
    """Unpickling this calls Path.touch: what a pickle-based weight file can make a loader do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


def test_pickled_weights_are_read_as_weights_only(tmp_path):
    """A Hub encoder's pytorch_model.bin goes through torch's weights-only unpickler: code in it never runs."""
    import torch
    from transformers import BertConfig

    from train.encoders import bert_wordpiece

    vocab = bert_wordpiece(["قال محمد في دمشق"], vocab_size=60).get_vocab()
    (tmp_path / "vocab.txt").write_text("".join(f"{piece}\n" for piece in sorted(vocab, key=vocab.get)))
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=32
    ).save_pretrained(tmp_path)
    marker = tmp_path / "code-ran"
    torch.save(
        {"embeddings.word_embeddings.weight": torch.zeros(len(vocab), 16), "x": _Payload(marker)},
        tmp_path / "pytorch_model.bin",
    )
    with pytest.raises(EncoderUnavailable, match="holds more than weights"):
        load_encoder(str(tmp_path))
    assert not marker.exists(), "unpickling ran code"
