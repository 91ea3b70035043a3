"""Reduced precision (bf16 autocast, int8 dynamic quantisation): same interface, close logits, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import Tagger
from models.checkpoint import load_checkpoint
from models.precision import reduced_precision

TEXTS = ["أعلن محمد في دمشق أن القوات استعادت السيطرة على مدينة دير الزور .", "في"]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_keeps_the_logits_close(tiny_run: Path, precision: str):
    model, tokenizer, info = load_checkpoint(tiny_run / "model")
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        exact = model(**inputs)
        reduced = reduced_precision(model, precision, torch.device("cpu"))(**inputs)
    for layer in info["layers"]:
        assert reduced[layer].shape == exact[layer].shape
        assert (reduced[layer].float() - exact[layer]).abs().max().item() < 0.25, layer


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_tagger_at_reduced_precision_tags_every_word(tiny_run: Path, precision: str):
    tagger = Tagger.load(tiny_run / "model", device="cpu").with_precision(precision)
    [predicted] = tagger.predict_words([["أعلن", "محمد", "في", "دمشق"]])
    assert all(len(tags) == 4 for tags in predicted.tags.values())
    assert tagger(TEXTS[0]).text == TEXTS[0]
    with pytest.raises(ValueError, match="once"):
        tagger.with_precision(precision)


def test_unknown_precision_is_refused(tiny_run: Path):
    with pytest.raises(ValueError, match="fp16"):
        Tagger.load(tiny_run / "model", device="cpu").with_precision("fp16")
