"""Bad input and safety (issue 7): every input gets a clear error or a right answer, and nothing is lost.

Two taggers from the session's tiny checkpoint: the trained one, and one whose entity head is forced to say
B-PERS for every word, so each word must come back as exactly one span of its own: a dropped, merged or
truncated word shows up as a missing or wrong span whatever the model has learnt.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import unicodedata
from pathlib import Path

import pytest
import torch
from conftest import tokenizer_json_to_vocab_txt
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from corpora.reader import Sentence
from models import Tagger
from models.__main__ import InputError, read_inputs
from models.checkpoint import HEADS_FILE, TAGGER_FILE, CheckpointError, load_checkpoint
from models.tagger import Doc
from models.text import split_words

ROOT = Path(__file__).resolve().parents[1]
SHADDA, FATHA, TANWIN_FATH, TATWEEL = "\u0651", "\u064e", "\u064b", "\u0640"

BAD_INPUTS = {
    "empty": "",
    "whitespace_only": " \t\n\r\n\u00a0\u3000  ",
    "punctuation_only": "... ، ؛ ؟! «» (-) [] {} / \\ * & ^ % $ # @ ~",
    "latin_only": "The Syrian army said on Monday that it had retaken the city.",
    "digits": "0 12 3.5 10,000 ١٢٣ ١٢٫٥ ۱۲۳ 2024-01-05 +963",
    "emoji": "👍🏽 👨\u200d👩\u200d👧 ❤️ 🇸🇾 😀😀😀",
    "mixed_arabic_latin": "قال CNN إن iPhone15 وصل إلىDamascus اليوم",
    "tashkeel_only_tokens": f"قال {SHADDA} محمد {FATHA}{SHADDA} {TANWIN_FATH} في {SHADDA}{SHADDA}{SHADDA}",
    "tatweel_runs": f"جـــــدا {TATWEEL * 40} دمشـــــــق {TATWEEL}",
    "zero_width_and_direction_marks": "\ufeff\u200bمحمد\u200c\u200dعلي\u200e \u200fفي\u202a دمشق\u202b\u202c\u202d LTR\u202e\ufeff",  # noqa: E501
    "control_characters": "قال\x00محمد\x01 \x07في\x1b[31mدمشق\x7f \x08\x0b\x0c\x1f",
    "presentation_forms": "\ufb50\ufb51 \ufefb \ufdf2 \ufe8d\ufedf\ufed8\ufe8e\ufeeb\ufeae\ufe93 \ufd3e\ufe8e\ufd3f \ufdfa \ufeff",  # noqa: E501
    "lone_surrogates": "قال \ud800 محمد\udcff في",  # what errors="surrogateescape" decoding leaves
    "a_1000_character_word": "قال " + "م" * 1000 + " في دمشق",
}


@pytest.fixture(scope="module")
def tagger(tiny_run: Path) -> Tagger:
    return Tagger.load(tiny_run / "model", device="cpu")


def every_word_a_person(tiny_run: Path) -> Tagger:
    """The tiny checkpoint with its entity head fixed to B-PERS: every word is then a span of its own."""
    model, tokenizer, info = load_checkpoint(tiny_run / "model")
    head = model.heads["entities"]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[info.settings.layers["entities"].index("B-PERS")] = 10.0
    return Tagger(model, tokenizer, info.settings)


@pytest.fixture(scope="module")
def word_tagger(tiny_run: Path) -> Tagger:
    return every_word_a_person(tiny_run)


def assert_valid_spans(text: str, doc: Doc, tagger: Tagger) -> None:
    """Offsets slice the raw text exactly; spans are non-empty, in order and never overlap within a layer."""
    assert doc.text == text
    for layer, labels in tagger.layers.items():
        previous_end = 0
        for span in doc.layer(layer):
            assert text[span.start : span.end] == span.text, span
            assert 0 <= span.start < span.end <= len(text), span
            assert span.start >= previous_end, f"{span} overlaps the span before it"
            assert f"B-{span.label}" in labels and 0.0 <= span.score <= 1.0, span
            previous_end = span.end


def assert_every_word_is_a_span(text: str, doc: Doc) -> None:
    """For the forced tagger: one span per word, and every visible character of the text inside one."""
    spans = [(span.start, span.end) for span in doc.entities]
    assert spans == [(word.start, word.end) for word in split_words(text)], "a word was dropped, merged or cut"
    covered = {index for start, end in spans for index in range(start, end)}
    for index, character in enumerate(text):
        if not character.isspace() and unicodedata.category(character) != "Cf":
            assert index in covered, f"visible character {character!r} (U+{ord(character):04X}) at {index} lost"


# --- the Tagger on odd text -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
@pytest.mark.slow
def test_odd_text_gets_valid_spans(tagger, word_tagger, name):
    text = BAD_INPUTS[name]
    assert_valid_spans(text, tagger(text), tagger)
    assert_every_word_is_a_span(text, word_tagger(text))


@pytest.mark.parametrize("name", ["empty", "whitespace_only"])
@pytest.mark.slow
def test_text_without_words_has_no_spans(word_tagger, name):
    assert word_tagger(BAD_INPUTS[name]).spans == ()


@pytest.mark.parametrize(
    "long_word",
    ["م" * 1000, TATWEEL * 1000, SHADDA * 1000, "x" * 1000, "7" * 1000],
    ids=["letter", "tatweel", "shadda", "latin", "digit"],
)
@pytest.mark.slow
def test_a_1000_character_word_is_one_word_with_one_tag(word_tagger, long_word):
    text = f"قال {long_word} في دمشق"
    spans = word_tagger(text).entities
    assert [(span.start, span.end) for span in spans] == [(0, 3), (4, 1004), (1005, 1007), (1008, 1012)]
    assert spans[1].text == long_word
    [predicted] = word_tagger.predict_words([["قال", long_word, "في"]])
    assert predicted.tags["entities"] == ["B-PERS"] * 3


@pytest.mark.slow
def test_a_100000_character_document_is_tagged_in_full(word_tagger):
    # no sentence end anywhere: one sentence of about 18,000 words, hundreds of windows
    words = ["أعلن", "محمد", "في", "دمشق", "أن", "القوات", "iPhone", "3.5", "،", "مُحَمَّد", "جـــدا"]
    text = " ".join(words * 2000)[:100_000]
    assert len(text) == 100_000
    started = time.perf_counter()
    doc = word_tagger(text)
    assert time.perf_counter() - started < 120, "the tiny model tags 100,000 characters in seconds"
    assert len(doc.entities) > 15_000
    assert_every_word_is_a_span(text, doc)


class MaxLengthSpy(torch.nn.Module):
    """Wraps a model and records the longest input it was given."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.longest = 0

    def forward(self, input_ids, attention_mask):
        self.longest = max(self.longest, input_ids.shape[1])
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


@pytest.mark.parametrize("model_max_length", [int(1e30), 8])
@pytest.mark.slow
def test_no_truncation_whatever_the_tokenizer_says(tiny_run, model_max_length):
    # A tokenizer with no usable model_max_length (CAMeLBERT#6: unset, so huge) or a wrong small one, and
    # truncation switched on in its backend: windows come from tagger.json's max_length alone, and a
    # sentence of many windows still gets one tag per word (transformers#15177: pipelines truncate silently).
    forced = every_word_a_person(tiny_run)
    tokenizer = forced.encoder.tokenizer
    tokenizer.model_max_length = model_max_length
    tokenizer.backend_tokenizer.enable_truncation(max_length=6)
    spy = MaxLengthSpy(forced.model)
    forced.model = spy
    text = " ".join(["أعلن", "محمد", "السيطرة", "على", "مدينة", "دير", "الزور"] * 40)
    doc = forced(text)
    assert_every_word_is_a_span(text, doc)
    assert len(doc.entities) == 280
    assert 0 < spy.longest <= forced.settings.max_length == 24, "a window longer than the checkpoint's max_length"


# any code point, mixed with the characters Arabic news text is made of and with odd ones (controls, format
# characters, lone surrogates, combining marks, spaces), which uniform draws would rarely hit
ANY_CHARACTER = st.characters(exclude_categories=())
ARABIC_TEXT_CHARACTER = st.sampled_from(f"محمد في دمشق {SHADDA}{FATHA}{TATWEEL} \u200f\u200b\ufeff\n.؟ 3٫5 \ufefb")
ODD_CHARACTER = st.characters(categories=("Cc", "Cf", "Cs", "Mn", "Zs", "Zl", "Zp"))


@given(st.text(st.one_of(ANY_CHARACTER, ARABIC_TEXT_CHARACTER, ODD_CHARACTER), max_size=300))
@settings(max_examples=150, deadline=None)
@pytest.mark.slow
def test_any_unicode_text_gets_valid_spans_and_loses_no_word(tagger, word_tagger, text):
    assert_valid_spans(text, tagger(text), tagger)
    assert_every_word_is_a_span(text, word_tagger(text))


# --- API misuse -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, says",
    [
        (None, "got NoneType"),
        (b"\xd9\x85", "got bytes (decode it first"),
        (["نص"], "got list (Tagger.tag takes a list"),
        (42, "got int"),
    ],
)
@pytest.mark.slow
def test_call_wants_one_str(tagger, value, says):
    with pytest.raises(TypeError) as info:
        tagger(value)
    assert "Tagger expects one text as a str" in str(info.value) and says in str(info.value)


@pytest.mark.parametrize(
    "value, says",
    [
        ("نص", "got str"),
        (None, "got NoneType"),
        ([None], "got a NoneType among them"),
        (["نص", b"x"], "got a bytes (decode it first"),
    ],
)
@pytest.mark.slow
def test_tag_wants_a_list_of_str(tagger, value, says):
    with pytest.raises(TypeError) as info:
        tagger.tag(value)
    assert "Tagger.tag expects a list of str" in str(info.value) and says in str(info.value)


@pytest.mark.parametrize(
    "value, says",
    [
        ("قال محمد", "got str"),  # would otherwise be tagged character by character
        (["قال محمد"], "got str"),  # a sentence given as one string, not a list of words
        ([["قال", None]], "got a NoneType among them"),
        (None, "got NoneType"),
        ([["قال"], b"x"], "got bytes"),
    ],
)
@pytest.mark.slow
def test_predict_words_wants_sentences_of_words(tagger, value, says):
    with pytest.raises(TypeError) as info:
        tagger.predict_words(value)
    assert "predict_words expects a list of sentences, each a list of str" in str(info.value)
    assert says in str(info.value)


@pytest.mark.parametrize("batch_size", [0, -1, None])
@pytest.mark.slow
def test_batch_size_must_be_positive(tiny_run, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {batch_size}"):
        Tagger.load(tiny_run / "model", device="cpu", batch_size=batch_size)


# --- files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_invalid_utf8_input_names_file_and_byte_offset_counting_the_bom(tmp_path, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + "دمشق".encode() + b"\xff rest")  # BOM 3 + 8 bytes: the bad byte is at 11
    with pytest.raises(InputError) as info:
        read_inputs([path])
    assert str(info.value) == f"{path}: not UTF-8 at byte offset 11"


def test_a_bom_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "دمشق".encode())
    assert read_inputs([path]) == [(str(path), "دمشق")]


@pytest.mark.slow
def test_gold_labels_the_checkpoint_does_not_know_are_listed_with_the_known_ones(tagger):
    from eval.harness import evaluate

    sentences = [
        Sentence(("محمد", "في", "واشنطن"), {"entities": ("B-PERS", "O", "B-GPE")}),
        Sentence(("الأمم", "المتحدة"), {"entities": ("B-ORG", "I-NORP")}),
    ]
    with pytest.raises(ValueError) as info:
        evaluate(tagger, sentences, "wojood:test")
    message = str(info.value)
    assert message.startswith(
        "wojood:test: layer 'entities' has labels the checkpoint does not know: ['B-GPE', 'I-NORP']"
    )
    assert str(list(tagger.layers["entities"])) in message


# --- checkpoints ------------------------------------------------------------------------------------


@pytest.fixture
def broken(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint to damage."""
    shutil.copytree(tiny_run / "model", tmp_path / "broken")
    return tmp_path / "broken"


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_corrupted_safetensors_header_fails_clearly(broken):
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(b"\x00" * 8 + b"{not json" + data[17:])
    with pytest.raises(CheckpointError, match="weights do not load .truncated or corrupted"):
        Tagger.load(broken, device="cpu")


@pytest.mark.parametrize("name", ["model.safetensors", HEADS_FILE])
@pytest.mark.slow
def test_a_corrupted_weight_byte_is_caught_by_the_recorded_digest(broken, name):
    # the file still parses and fits: only the sha256 recorded at save time can tell
    flip_byte(broken / name, (broken / name).stat().st_size - 3)
    load_file(broken / name)  # premise: safetensors itself does not notice
    with pytest.raises(CheckpointError, match=f"{name} is corrupted: its sha256 differs"):
        Tagger.load(broken, device="cpu")


@pytest.mark.slow
def test_pickle_weights_are_refused_and_never_unpickled(broken, monkeypatch):
    (broken / "model.safetensors").unlink()
    torch.save({"not": "loaded"}, broken / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("torch.load was called"))
    with pytest.raises(CheckpointError) as info:
        Tagger.load(broken, device="cpu")
    message = str(info.value)
    assert "model.safetensors is missing; only safetensors weights are loaded" in message
    assert "pytorch_model.bin" in message


@pytest.mark.slow
def test_no_tokenizer_json_is_an_error_not_a_rebuilt_tokenizer(broken):
    tokenizer_json_to_vocab_txt(broken)
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        Tagger.load(broken, device="cpu")


@pytest.mark.slow
def test_remote_code_in_a_checkpoint_is_never_run(broken, tmp_path):
    marker = tmp_path / "remote-code-ran"
    (broken / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="evil-remote", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"})
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointError, match="config.json does not load"):
        Tagger.load(broken, device="cpu")
    assert not marker.exists()


def edit_settings(checkpoint: Path, **changes) -> None:
    info = json.loads((checkpoint / TAGGER_FILE).read_text(encoding="utf-8"))
    info["settings"].update(changes)
    (checkpoint / TAGGER_FILE).write_text(json.dumps(info), encoding="utf-8")


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"max_length": 1024}, "sets max_length 1024, but the encoder has only 512 positions"),
        ({"layers": {"entities": ["O", "B-PERS", "PERS"]}}, "layer 'entities': tag 'PERS' is not O, B-TYPE or I-TYPE"),
        ({"layers": {"entities": ["O", "B-PERS", "B-PERS"]}}, "layer 'entities' needs a list of distinct labels"),
        ({"layers": []}, "'layers' must map each layer to its labels"),
    ],
)
@pytest.mark.slow
def test_a_tagger_json_that_cannot_be_right_fails_clearly(broken, changes, says):
    edit_settings(broken, **changes)
    with pytest.raises(CheckpointError, match=re.escape(says)):
        Tagger.load(broken, device="cpu")


@pytest.mark.slow
def test_a_head_without_its_bias_fails_clearly(broken):
    heads = load_file(broken / HEADS_FILE)
    del heads["entities.bias"]
    save_file(heads, str(broken / HEADS_FILE))
    with pytest.raises(CheckpointError, match="the head of layer 'entities' does not fit"):
        Tagger.load(broken, device="cpu")


def test_the_source_never_trusts_remote_code_or_unpickles():
    # spelt in pieces so this file does not match itself
    forbidden = re.compile("trust_remote_code" + r"\s*=\s*True|torch\.load" + r"\(|pickle\.loads?\(")
    sources = [
        path for folder in ("models", "train", "eval", "bench", "tests") for path in (ROOT / folder).rglob("*.py")
    ]
    assert len(sources) > 20
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if forbidden.search(line)
    ]
    assert found == []


# --- determinism ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_seed_and_config_give_identical_metrics_and_weights(tiny_data_root, tmp_path):
    from train.config import load_config
    from train.run import run

    infos, heads = [], []
    for name in ("first", "second"):
        config = load_config(
            ROOT / "configs" / "tiny.yaml",
            [f"data_root={tiny_data_root}", f"output_dir={tmp_path}", f"name={name}", "training.epochs=1"],
        )
        model_dir = run(config)
        meta = json.loads((model_dir / TAGGER_FILE).read_text(encoding="utf-8"))
        infos.append({**meta["provenance"], "sha256": meta["sha256"]})
        heads.append(load_file(model_dir / HEADS_FILE))
    assert infos[0]["metrics"] == infos[1]["metrics"]
    assert infos[0]["metrics"]["test"]["entities"]["micro_f1"] >= 0.0
    assert heads[0].keys() == heads[1].keys()
    assert all(torch.equal(heads[0][key], heads[1][key]) for key in heads[0])
    assert infos[0]["sha256"] == infos[1]["sha256"], "encoder or head weights differ"
