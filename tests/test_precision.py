"""Reduced precision (bf16 autocast, int8 dynamic quantisation): same interface, close logits, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models import Tagger
from models.checkpoint import load_checkpoint
from models.precision import reduced_precision, resolve_precision

TEXTS = ["أعلن محمد في دمشق أن القوات استعادت السيطرة على مدينة دير الزور .", "في"]


@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.slow
def test_reduced_precision_keeps_the_logits_close(tiny_run: Path, precision: str):
    model, tokenizer, info = load_checkpoint(tiny_run / "model")
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        exact = model(**inputs)
        reduced = reduced_precision(model, precision, torch.device("cpu"))(**inputs)
    for layer in info.settings.layers:
        assert reduced[layer].shape == exact[layer].shape
        assert (reduced[layer].float() - exact[layer]).abs().max().item() < 0.25, layer


@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.slow
def test_tagger_at_reduced_precision_tags_every_word(tiny_run: Path, precision: str):
    tagger = Tagger.load(tiny_run / "model", device="cpu", precision=precision)
    assert tagger.precision == precision
    [predicted] = tagger.predict_words([["أعلن", "محمد", "في", "دمشق"]])
    assert all(len(tags) == 4 for tags in predicted.tags.values())
    assert tagger(TEXTS[0]).text == TEXTS[0]
    with pytest.raises(ValueError, match="once"):
        tagger.with_precision(precision)


@pytest.mark.slow
def test_unknown_precision_is_refused(tiny_run: Path):
    with pytest.raises(ValueError, match="fp16"):
        Tagger.load(tiny_run / "model", device="cpu").with_precision("fp16")


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.slow
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tiny_run: Path, monkeypatch, native: bool):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    tagger = Tagger.load(tiny_run / "model", device="cpu")
    assert tagger.precision == ("bf16" if native else "fp32")
    assert isinstance(tagger.model, torch.nn.Module) != native, "bf16 wraps the model in autocast"
    exact = Tagger.load(tiny_run / "model", device="cpu", precision="fp32")
    assert exact.precision == "fp32" and isinstance(exact.model, torch.nn.Module)


def test_auto_precision_without_the_private_probes_is_fp32(monkeypatch):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


@pytest.mark.slow
def test_fp32_tagger_matches_the_checkpoint_logits_whatever_the_cpu(tiny_run: Path):
    """precision="fp32" is exact on every machine: the Tagger's model is the checkpoint's, unwrapped."""
    model, tokenizer, _ = load_checkpoint(tiny_run / "model")
    tagger = Tagger.load(tiny_run / "model", device="cpu", precision="fp32")
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected, got = model(**inputs), tagger.model(**inputs)
    for layer in tagger.layers:
        assert torch.equal(expected[layer], got[layer]), layer


@pytest.mark.slow
def test_eval_records_the_precision_it_scored_at(tiny_run: Path, tiny_data_root: Path, tmp_path: Path):
    from eval.__main__ import main

    out = tmp_path / "scores"
    assert (
        main(
            [
                "--checkpoint",
                str(tiny_run / "model"),
                "--data",
                "anercorp:test",
                "--data-root",
                str(tiny_data_root),
                "--out",
                str(out),
                "--precision",
                "int8",
            ]
        )
        == 0
    )
    report = json.loads((out / "eval-anercorp-test.json").read_text())
    assert report["precision"] == "int8"
    assert "(int8)" in (out / "eval-anercorp-test.md").read_text()


@pytest.mark.slow
def test_metrics_recorded_after_bf16_training_are_the_fp32_models(tiny_data_root: Path, tmp_path: Path, monkeypatch):
    """Training at bf16 wraps the model's forward in autocast; the metrics written into tagger.json must come
    from the plain fp32 model, as `python -m eval` loads it, not from that wrapper."""
    import train.run
    from train.config import load_config

    autocast_seen = []

    class RecordingTagger(train.run.Tagger):
        def __init__(self, model, *args, **kwargs):
            # on the encoder: a hook on the model itself runs before its (wrapped) forward is entered
            model.encoder.register_forward_pre_hook(
                lambda module, inputs: autocast_seen.append(torch.is_autocast_enabled("cpu"))
            )
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(train.run, "Tagger", RecordingTagger)
    config = load_config(
        Path(__file__).parents[1] / "configs" / "tiny.yaml",
        [f"data_root={tiny_data_root}", f"output_dir={tmp_path}", "training.epochs=1", "training.precision=bf16"],
    )
    train.run.run(config)
    assert autocast_seen and not any(autocast_seen), "dev/test metrics were measured under bf16 autocast"
