"""A folder shaped like the Hub's aubmindlab/bert-base-arabertv02, through `make train` and `make eval` (issue 23).

The Hub repository is a BERT checkpoint with a WordPiece vocab.txt and no tokenizer.json, a tokenizer_config.json,
and weights that older repositories ship as pytorch_model.bin. The folder here has exactly those files (a small
BERT with random weights, a vocabulary trained on the synthetic corpus), once with pytorch_model.bin and once
with model.safetensors, and goes the way the first GPU run will: `make train CONFIG=configs/arabertv02.yaml`
through `accelerate launch` (on the CPU, a few steps), the export, Tagger.load, `make eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_make
from transformers import BertForPreTraining

from corpora.reader import load_split
from models import Tagger
from models.checkpoint import PICKLE_SUFFIXES, TOKENIZER_FILE
from models.text import normalise_word
from train.encoders import bert_wordpiece, load_encoder, write_bert_stand_in

# AraBERT's words with hamza: a tokenizer that lower-cased or stripped accents would fold أ إ آ into ا
HAMZA_TEXT = "قال أحمد إن القوات الأمريكية وصلت إلى بغداد"

pytestmark = pytest.mark.slow


def hub_folder(folder: Path, sentences: list[list[str]], weights: str) -> BertForPreTraining:
    texts = [" ".join(normalise_word(word, "arabert_v02") for word in words) for words in sentences]
    model = write_bert_stand_in(
        folder, texts + [HAMZA_TEXT], {"vocab_size": 400, "hidden_size": 32, "layers": 2, "heads": 2}, weights
    )
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["config.json", "vocab.txt", "tokenizer_config.json", weights]
    ), "the files of the Hub repository, no other"
    return model


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_hub_shaped_arabert_trains_exports_and_evaluates(weights, tiny_data_root: Path, tmp_path: Path):
    sentences = [list(sentence.words) for sentence in load_split("anercorp-events:train", tiny_data_root)]
    hub = tmp_path / "bert-base-arabertv02"
    pretrained = hub_folder(hub, sentences, weights)

    # what `make train` will load: the encoder's weights from the file, and a tokenizer that keeps hamza
    encoder, tokenizer = load_encoder(str(hub))
    expected = pretrained.bert.state_dict()
    assert all(torch.equal(tensor, expected[name]) for name, tensor in encoder.state_dict().items())
    reference = bert_wordpiece([HAMZA_TEXT], vocab_size=400)
    assert tokenizer.tokenize(HAMZA_TEXT) == reference.tokenize(HAMZA_TEXT) == HAMZA_TEXT.split()

    runs = tmp_path / "runs"
    trained = run_make(
        "train",
        "CONFIG=configs/arabertv02.yaml",
        f"ARGS=encoder={hub} data_root={tiny_data_root} output_dir={runs} training.device=cpu "
        "training.max_steps=3 training.batch_size=8 training.eval_batch_size=16 training.threads=1",
        data_root=tiny_data_root,
    )
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-5000:]
    assert "accelerate launch" in trained.stdout
    model_dir = runs / "arabertv02" / "model"
    files = sorted(path.name for path in model_dir.iterdir())
    assert TOKENIZER_FILE in files and "model.safetensors" in files
    assert not [name for name in files if name.endswith(PICKLE_SUFFIXES)], files
    info = json.loads((model_dir / "tagger.json").read_text(encoding="utf-8"))
    assert info["provenance"]["encoder"] == str(hub) and info["settings"]["normalisation"] == "arabert_v02"

    tagger = Tagger.load(model_dir, device="cpu")
    # the exported tokenizer is the Hub folder's: same pieces, hamza kept
    assert tagger.encoder.tokenizer.tokenize(HAMZA_TEXT) == tokenizer.tokenize(HAMZA_TEXT)
    text = "قتل 6 أشخاص و6 جرحى في هجوم على بغداد 3/4"
    doc = tagger(text)
    for span in doc.entities + doc.events:
        assert text[span.start : span.end] == span.text

    evaluated = run_make("eval", f"CHECKPOINT={model_dir}", data_root=tiny_data_root)
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-5000:]
    assert "entities" in evaluated.stdout and "events" in evaluated.stdout
