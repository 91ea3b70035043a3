"""Encoders by name: a Hub id that cannot be fetched fails at once with what to do instead."""
from __future__ import annotations

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
