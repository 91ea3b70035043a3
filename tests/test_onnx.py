"""ONNX export of a whole checkpoint (encoder + every head) and the Tagger on onnxruntime, on the tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend is an optional extra: pip install -e '.[onnx]'")
pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript: pip install -e '.[onnx]'")

import torch  # noqa: E402
from conftest import tokenizer_json_to_vocab_txt  # noqa: E402

from corpora.reader import load_split  # noqa: E402
from models import Tagger  # noqa: E402
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from models.onnx_runtime import ONNX_FILE, load_onnx_checkpoint  # noqa: E402
from train.export import main as export_main  # noqa: E402

pytestmark = pytest.mark.slow  # every test reads the session's trained tiny checkpoint (conftest.tiny_run)

SENTENCES = [
    "أعلن محمد في دمشق",
    "في",
    "وقال أحمد علي إن القوات استعادت السيطرة على مدينة دير الزور اليوم في هجوم",
    "اجتماع الأمم المتحدة في القاهرة",
    "كأس العالم",
]


def _where(span) -> tuple:
    return span.layer, span.label, span.start, span.end, span.text


@pytest.fixture(scope="module")
def onnx_checkpoint(tiny_run: Path, tmp_path_factory) -> Path:
    """The tiny checkpoint with model.onnx beside it, written through the CLI. Its heads are redrawn at random:
    after a few steps of training it tags (almost) everything O, and the span checks need spans."""
    folder = tmp_path_factory.mktemp("onnx") / "model"
    model, tokenizer, info = load_checkpoint(tiny_run / "model")
    torch.manual_seed(0)
    for head in model.heads.values():
        torch.nn.init.normal_(head.weight, std=1.0)
    save_checkpoint(model, tokenizer, folder, info.settings, info.provenance)
    assert export_main(["--checkpoint", str(folder), "--onnx", str(folder / ONNX_FILE)]) == 0
    return folder


def test_graph_has_dynamic_batch_and_length_and_one_output_per_layer(onnx_checkpoint: Path):
    import onnx

    graph_model = onnx.load(str(onnx_checkpoint / ONNX_FILE))
    assert max(opset.version for opset in graph_model.opset_import if opset.domain in ("", "ai.onnx")) >= 17
    inputs = {value.name: value for value in graph_model.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    for value in inputs.values():
        batch, length = value.type.tensor_type.shape.dim
        assert batch.dim_param and length.dim_param, "batch and length must be dynamic"
    _, _, info = load_checkpoint(onnx_checkpoint)
    assert [value.name for value in graph_model.graph.output] == list(info.settings.layers)


def test_logits_match_torch(onnx_checkpoint: Path):
    model, tokenizer, info = load_checkpoint(onnx_checkpoint)
    runner, _, _ = load_onnx_checkpoint(onnx_checkpoint)
    # one sentence alone, then batches with padding and lengths other than the traced sample's
    for texts in (SENTENCES[:1], SENTENCES, SENTENCES[2:4], [" ".join(SENTENCES)] * 3):
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            expected = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        got = runner(inputs["input_ids"], inputs["attention_mask"])
        real = inputs["attention_mask"].bool()  # padded positions carry no prediction
        for layer in info.settings.layers:
            assert got[layer].shape == expected[layer].shape
            assert (got[layer][real] - expected[layer][real]).abs().max().item() <= 1e-3, (layer, texts)


def test_tagger_on_onnxruntime_finds_the_same_spans(onnx_checkpoint: Path, tiny_data_root: Path):
    texts = [" ".join(sentence.words) for sentence in load_split("anercorp:test", tiny_data_root)] + SENTENCES
    for decoding in ("viterbi", "argmax"):
        on_torch = Tagger.load(onnx_checkpoint, device="cpu", decoding=decoding, batch_size=4, precision="fp32").tag(
            texts
        )
        on_onnx = Tagger.load_onnx(onnx_checkpoint, decoding=decoding, batch_size=4).tag(texts)
        for torch_doc, onnx_doc in zip(on_torch, on_onnx, strict=True):
            assert [_where(span) for span in torch_doc.spans] == [_where(span) for span in onnx_doc.spans]
            for a, b in zip(torch_doc.spans, onnx_doc.spans):
                assert a.score == pytest.approx(b.score, abs=1e-3)
    assert any(doc.spans for doc in on_onnx), "the check compared something"


def test_missing_graph_says_how_to_make_it(tiny_run: Path, tmp_path: Path):
    with pytest.raises(CheckpointError, match="train.export"):
        Tagger.load_onnx(tiny_run / "model", onnx_file=tmp_path / "missing.onnx")


def test_no_tokenizer_json_is_an_error_not_a_rebuilt_tokenizer(onnx_checkpoint: Path, tmp_path: Path):
    folder = tmp_path / "model"
    shutil.copytree(onnx_checkpoint, folder)
    tokenizer_json_to_vocab_txt(folder)
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        Tagger.load_onnx(folder)
