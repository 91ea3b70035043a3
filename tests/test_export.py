"""The standalone export reads raw text as the Tagger does, and a joint checkpoint does not pass for a token classifier.

A tiny random model predicts noise, so the word cutting is tested through offsets and pieces, and the pipeline's
words through a classifier that labels every word B-LOC: each word it reads is then an entity of its own."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from eval.model_card import write_model_card
from models.checkpoint import NOT_A_CLASSIFIER, TOKENIZER_FILE
from models.encoding import WordEncoder
from models.text import split_words
from train.export import aggregation_for, export_layer, pipeline_reads_words, tagger_word_pattern, word_tokenizer_json

# punctuation written against words, Arabic punctuation, a symbol that BERT's pre-tokenizer keeps on its number, a
# direction mark between words, runs of spaces
TEXT = "في غزة. وصل محمد إلى دمشق،ثم (بغداد) عند 40° اليوم!  وقال أحمد:  القدس\u200f أيضا؟"
# and words that the Tagger's normalisation (basic) shortens: tashkeel, tatweel
NORMALISED_TEXT = TEXT + " مُحَمَّد الـــقدس"


@pytest.fixture(scope="module")
def export(tiny_run: Path, tmp_path_factory) -> Path:
    return export_layer(tiny_run / "model", "entities", tmp_path_factory.mktemp("export") / "entities")


def test_the_word_pattern_cuts_text_as_the_tagger():
    """Every code point of the Basic Multilingual Plane and every 97th beyond it, as a word character, a separator,
    punctuation, next to digits and between them."""
    split = pre_tokenizers.Split(Regex(tagger_word_pattern()), behavior="removed", invert=True)
    codes = [*range(0xD800), *range(0xE000, 0x10000), *range(0x10000, sys.maxunicode + 1, 97)]
    text = " ".join("a" + char + "0" + char + "1" + char + "." + char for char in map(chr, codes))
    assert [offsets for _, offsets in split.pre_tokenize_str(text)] == [
        (word.start, word.end) for word in split_words(text)
    ]


def test_the_export_gives_the_model_the_taggers_pieces(tiny_run: Path, export: Path):
    from transformers import AutoTokenizer

    tagger_side = WordEncoder(AutoTokenizer.from_pretrained(tiny_run / "model"), "basic", max_length=512, overlap=0)
    words = [word.text for word in split_words(NORMALISED_TEXT)]
    expected = [piece for word in tagger_side.pieces([words])[0] for piece in word]
    got = AutoTokenizer.from_pretrained(export)(NORMALISED_TEXT, add_special_tokens=False, return_offsets_mapping=True)
    assert got["input_ids"] == expected
    assert not any(NORMALISED_TEXT[start].isspace() for start, _ in got["offset_mapping"])
    steps = json.loads((export / TOKENIZER_FILE).read_text(encoding="utf-8"))["pre_tokenizer"]["pretokenizers"]
    assert steps[0]["pattern"]["Regex"] == tagger_word_pattern()


@pytest.mark.parametrize("aggregation", ["first", "average"])
def test_a_plain_pipeline_on_the_export_reads_the_taggers_words(export: Path, tmp_path: Path, aggregation: str):
    from transformers import pipeline

    every_word_a_place = tmp_path / "every-word-a-place"
    shutil.copytree(export, every_word_a_place)
    config = json.loads((every_word_a_place / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(every_word_a_place / "model.safetensors"))
    weights["classifier.weight"].zero_()
    weights["classifier.bias"].zero_()
    weights["classifier.bias"][int(config["label2id"]["B-LOC"])] = 10.0
    save_file(weights, str(every_word_a_place / "model.safetensors"), metadata={"format": "pt"})
    tagger = pipeline("token-classification", model=str(every_word_a_place), aggregation_strategy=aggregation)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        entities = tagger(TEXT)
    assert not [warning for warning in warned if "does not support real words" in str(warning.message)]
    assert {entity["entity_group"] for entity in entities} == {"LOC"}
    # every word a span of its own: one B-LOC after another never merges
    spans = [(entity["start"], entity["end"]) for entity in entities]
    assert spans == [(word.start, word.end) for word in split_words(TEXT)]
    gaza = TEXT.index("غزة")
    assert (gaza, gaza + len("غزة")) in spans, "the period after the name is a word of its own"


def test_a_sentencepiece_export_leaves_spaces_out_of_offsets_and_words_in_spans():
    """The e5 encoders' kind of tokenizer: Unigram pieces, a `▁` before each word (Metaspace), some words read as a
    lone `▁` piece and the rest."""
    vocab = [
        ("<unk>", 0.0),
        ("▁", -2.0),
        ("▁في", -1.0),
        ("▁غزة", -1.0),
        ("قيس", -1.0),
        ("▁سعيد", -1.0),
        (".", -1.0),
        ("،", -1.0),
        *[(char, -5.0) for char in "فيغزةقسعد"],
    ]
    backend = Tokenizer(models.Unigram(vocab, unk_id=0))
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    encoder_side = {**json.loads(backend.to_str()), "pre_tokenizer": metaspace, "decoder": metaspace}
    exported = Tokenizer.from_str(json.dumps(word_tokenizer_json(encoder_side, "basic"), ensure_ascii=False))
    text = "في  غزة. قيس سعيد،"
    encoded = exported.encode(text, add_special_tokens=False)
    tagger_words = [word.text for word in split_words(text)]
    encoder = Tokenizer.from_str(json.dumps(encoder_side, ensure_ascii=False))
    # the Tagger encodes each word as a text of its own, so even with prepend_scheme "first" each gets its `▁`
    assert encoded.tokens == encoder.encode(tagger_words, is_pretokenized=True, add_special_tokens=False).tokens
    assert "▁" in encoded.tokens, "a lone `▁` piece, as this vocabulary reads قيس"
    assert not any(text[start].isspace() for start, _ in encoded.offsets)
    # what the pipeline does with a span of two words: decode each word's pieces, then decode the words joined
    decoder = exported.decoder
    words = [decoder.decode(["▁", "قيس"]), decoder.decode(["▁سعيد"])]
    assert decoder.decode(words) == "قيس سعيد"
    assert decoder.decode([decoder.decode(["▁غزة"])]) == "غزة"
    # the pipeline cuts this tokenizer's words at spaces only: "average" would mix the period's O into غزة
    assert not pipeline_reads_words(encoder_side)
    assert aggregation_for("mean", reads_words=False) == "first"
    assert aggregation_for("mean", reads_words=True) == "average"


def test_the_export_has_a_card_that_invites_the_pipeline(tiny_run: Path, export: Path):
    card = (export / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: token-classification" in card and "library_name: transformers" in card
    assert f'model="{export}", aggregation_strategy="first"' in card
    assert "The pipeline groups pieces into these words, except" in card  # WordPiece: it reads the tokenizer's words


def test_a_joint_checkpoint_says_it_is_not_a_token_classifier(tiny_run: Path, tmp_path: Path):
    from transformers import AutoModel, pipeline

    joint = tmp_path / "model"
    shutil.copytree(tiny_run / "model", joint)
    card = write_model_card(joint).read_text(encoding="utf-8")
    metadata = card.split("---")[1]
    assert "pipeline_tag" not in metadata and "library_name: transformers" in metadata
    intro = card.split("\n# ", 1)[1][:800]
    assert "Not a transformers token classifier" in intro and "python -m train.export" in intro
    assert NOT_A_CLASSIFIER in intro
    # what a loader sees: the encoder loads as it is; a token-classification pipeline labels every word with the way in
    assert AutoModel.from_pretrained(joint).config.hidden_size == 32
    entities = pipeline("token-classification", model=str(joint))("أعلن محمد في دمشق")
    assert entities and {entity["entity"] for entity in entities} == {NOT_A_CLASSIFIER}
