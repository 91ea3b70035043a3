"""AraBERT v0.2's own preprocessing against the project's `arabert_v02` normalisation (issue 23).

AraBERT's authors run ArabertPreprocessor (the `arabert` package) on text before fine-tuning. The project
normalises word by word, to keep every word whole and its offsets exact; these tests check that the pieces an
AraBERT-style WordPiece tokenizer makes of each word, through the project's own path (WordEncoder), are the
pieces of the word as AraBERT's preprocessing leaves it. AraBERT's vocabulary cannot be downloaded here, so the
tokenizer is one trained on the corpora with AraBERT's tokenizer settings (train/encoders.py bert_wordpiece).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from arabert.preprocess import ArabertPreprocessor

from corpora.reader import load_split
from models.encoding import WordEncoder
from models.tagger import Tagger
from models.text import normalise_word, split_words
from train.encoders import bert_wordpiece

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "ARABERT.md"
# the ANERcorp files, train (which the project splits into train and dev) and test
ANERCORP = ("anercorp:train", "anercorp:dev", "anercorp:test")
# Arabic presentation forms: arabert_v02 gives back the letters they stand for, where AraBERT drops them
PRESENTATION_FORMS = [*range(0xFB50, 0xFE00), *range(0xFE70, 0xFEFD)]


@pytest.fixture(scope="module")
def arabert() -> ArabertPreprocessor:
    return ArabertPreprocessor("aubmindlab/bert-base-arabertv02")


@pytest.mark.slow
def test_words_reach_the_tokenizer_as_arabert_leaves_them(real_root, arabert):
    """Every word of ANERcorp train and test: the project's pieces equal AraBERT's for at least 99.9% of words,
    and each word that differs is listed in docs/ARABERT.md with the reason."""
    sentences = [list(sentence.words) for name in ANERCORP for sentence in load_split(name, real_root)]
    assert sum(map(len, sentences)) == 125_102 + 25_008, "not the two ANERcorp files in full"
    tokenizer = bert_wordpiece((arabert.preprocess(" ".join(words)) for words in sentences), vocab_size=30_000)
    unknown = tokenizer.unk_token_id
    pieces = WordEncoder(tokenizer, "arabert_v02", max_length=512, overlap=0).pieces(sentences)

    theirs: dict[str, list[int]] = {}
    for word in {word for words in sentences for word in words}:
        ids = tokenizer(arabert.preprocess(word), add_special_tokens=False)["input_ids"]
        # a word AraBERT's preprocessing drops whole (a lone tatweel): nothing of it reaches AraBERT's model; the
        # project holds its place, and its tag, with the unknown piece, as it does for any word without pieces
        theirs[word] = ids or [unknown]
    differing: Counter = Counter()
    placeholders = 0
    for words, per_word in zip(sentences, pieces):
        for word, ours in zip(words, per_word):
            if ours != theirs[word]:
                differing[word] += 1
            elif not arabert.preprocess(word):
                placeholders += 1
    total = sum(map(len, sentences))
    identical = 1 - sum(differing.values()) / total
    assert identical >= 0.999, f"{identical:.4%} of words identical; differing: {differing.most_common(20)}"
    assert placeholders, "the corpus has lone tatweels; none was found dropped"
    documented = DOCS.read_text(encoding="utf-8")
    missing = [word for word in differing if f"`{word}`" not in documented]
    assert not missing, f"words whose pieces differ from AraBERT's but which {DOCS.name} does not list: {missing}"


@pytest.mark.slow
def test_every_character_as_arabert_leaves_it(arabert):
    """Each Basic Multilingual Plane character alone, between letters and repeated: the normalised word is
    AraBERT's preprocessed word (the presentation forms aside, which arabert_v02 reads as their letters)."""
    skipped = set(PRESENTATION_FORMS) | set(range(0xD800, 0xE000))  # and lone surrogates, which are not text
    differing = []
    for code in range(0x10000):
        if code in skipped:
            continue
        character = chr(code)
        for word in (character, f"ب{character}ب", f"1{character}ب", character * 4):
            if normalise_word(word, "arabert_v02") != arabert.preprocess(word):
                differing.append(word)
    assert not differing, [
        (word, normalise_word(word, "arabert_v02"), arabert.preprocess(word)) for word in differing[:10]
    ]


def test_random_words_as_arabert_leaves_them(arabert):
    """Random words of Arabic and Latin letters, both kinds of digits, marks, tatweel, punctuation, HTML entities
    and tags: the same text as AraBERT's. Links, e-mail addresses and mentions are left out: arabert_v02 replaces
    such a word whole, where AraBERT replaces the part its patterns match (docs/ARABERT.md)."""
    alphabet = (
        list("بتجحدرسصطعفقكلمنهويءآأؤإئاةى")
        + list("0123456789٠١٢٥٩۱۲")
        + list("\u064b\u064e\u0651\u0652\u0653\u0654\u0670\u0640\u0671\u06a4\u067e")
        + list("./-_:%&;#!?,،؟؛«»\"'()[]<>=+~*$^|\\{}`")
        + list("XYZQéüÉß中😀\u200f\u00a0\ufe0f\x00")
        + ["&amp;", "&quot;", "&#0", "ـــ", "ههه", "...", "\u2026", "\u00b7", "\u2014", "<b>", "</i>"]
    )
    rng = random.Random(23)
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(20_000)]
    differing = [
        word for word in words if "://" not in word and normalise_word(word, "arabert_v02") != arabert.preprocess(word)
    ]
    assert not differing, [
        (word, normalise_word(word, "arabert_v02"), arabert.preprocess(word)) for word in differing[:10]
    ]


def test_a_word_in_parts_keeps_all_its_pieces():
    """A normalised word with spaces (و 6) is pre-tokenized into parts; every piece still belongs to its word,
    and a word with nothing left (a lone tatweel) holds its place with the unknown piece."""
    words = ["قال", "و6", "ـ", "3/4", "لأفغانستان؛", "Zürich"]
    tokenizer = bert_wordpiece([normalise_word(word, "arabert_v02") for word in words] * 3, vocab_size=200)
    encoder = WordEncoder(tokenizer, "arabert_v02", max_length=32, overlap=0)
    pieces = encoder.pieces([words])[0]
    for word, ours in zip(words, pieces):
        alone = tokenizer(normalise_word(word, "arabert_v02"), add_special_tokens=False)["input_ids"]
        assert ours == (alone or [tokenizer.unk_token_id]), word
    assert [len(ours) for ours in pieces] == [1, 2, 1, 3, 2, 2]
    (window,) = encoder.encode([words])[0]
    assert window.words == list(range(len(words))), "every word predicted once"
    assert window.input_ids[1:-1] == [piece for ours in pieces for piece in ours]


@pytest.mark.slow
def test_tagger_keeps_words_whole_and_offsets_exact(tiny_run):
    """The Tagger under arabert_v02, on text whose words AraBERT splits or drops: one span per word, offsets
    exact (the entity head forced to B-PERS, as in tests/test_bad_input.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_bad_input import BAD_INPUTS, assert_every_word_is_a_span, every_word_a_person

    forced = every_word_a_person(tiny_run)
    tagger = Tagger(forced.model, forced.encoder.tokenizer, replace(forced.settings, normalisation="arabert_v02"))
    texts = ["قتل 6 أشخاص و6 جرحى في 3/4 ـ لأفغانستان؛ عام2006 (40د) Zürich www.bbc.com ١٩٩٥", *BAD_INPUTS.values()]
    for text in texts:
        doc = tagger(text)
        assert_every_word_is_a_span(text, doc)
        assert len(doc.entities) == len(split_words(text))
