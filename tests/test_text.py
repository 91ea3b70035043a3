"""Arabic text handling: words keep character offsets into the raw text, whatever the text holds."""

from __future__ import annotations

import unicodedata

import pytest

from models.text import Word, normalise_word, split_sentences, split_words

SHADDA = "\u0651"
TATWEEL = "\u0640"

TRICKY = {
    "tashkeel": "قال مُحَمَّد إِنَّ الجَيْشَ",
    "tatweel": "جـــدا جميـــل ـــ",
    "punctuation": "الجيش (السوري)، «دمشق» - قال: نعم؛ لا؟!",
    "latin_digits": "iPhone 15 و 3.5% و١٢٫٥ e-mail",
    "newlines": "سطر أول\nسطر ثان\r\nثالث\n\n\nرابع\t ",
    "zero_width_direction": "\u200fمحمد\u200e \u200bدمشق\u200c\u200dعلي \u202aLTR\u202c \u202bRTL\u202e\u202d",
    "isolates": "\u2066محمد\u2069 \u2067علي\u2069",
    "bom": "\ufeffبسم الله",
    "emoji": "رائع 👍🏽 👨\u200d👩\u200d👧 ❤️ 🇸🇾",
    "presentation_forms": "\ufefb \ufdf2 \ufe8d\ufedf\ufed8\ufe8e\ufeeb\ufeae\ufe93 \ufd3e\ufe8e\ufd3f \ufdfa",
    "lone_marks": f"{SHADDA} {TATWEEL} \u064e\u064b",
    "empty": "",
    "whitespace_only": " \t\n\u00a0\u3000\r\n",
    "mixed": "عاجل:قتل 3 في(حمص)،\u200fوأصيب 5...اليوم",
}


def _assert_words_slice_the_text(text: str, words: list[Word]) -> None:
    previous_end = 0
    for word in words:
        assert text[word.start : word.end] == word.text, word
        assert word.start < word.end, f"empty word {word}"
        assert word.start >= previous_end, f"{word} overlaps or is out of order"
        previous_end = word.end
    covered = set()
    for word in words:
        covered.update(range(word.start, word.end))
    for index, character in enumerate(text):
        if character.isspace() or unicodedata.category(character) == "Cf":
            continue
        assert index in covered, f"visible character {character!r} (U+{ord(character):04X}) at {index} is in no word"


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_offsets_slice_the_raw_text(name):
    text = TRICKY[name]
    _assert_words_slice_the_text(text, split_words(text))


def test_all_tricky_strings_together():
    text = " ".join(TRICKY.values())
    _assert_words_slice_the_text(text, split_words(text))


def test_words_are_not_whitespace_or_direction_marks():
    text = TRICKY["zero_width_direction"] + TRICKY["bom"] + TRICKY["whitespace_only"]
    for word in split_words(text):
        assert not word.text.isspace()
        assert not set(word.text) & {
            "\u200b",
            "\u200e",
            "\u200f",
            "\u202a",
            "\u202b",
            "\u202c",
            "\u202d",
            "\u202e",
            "\ufeff",
        }


def test_empty_and_whitespace_only_have_no_words():
    assert split_words("") == []
    assert split_words(TRICKY["whitespace_only"]) == []
    assert split_sentences("") == []
    assert split_sentences(TRICKY["whitespace_only"]) == []


def test_tashkeel_stays_inside_its_word():
    text = "قال مُحَمَّد"
    assert split_words(text) == [Word("قال", 0, 3), Word("مُحَمَّد", 4, 12)]


def test_tatweel_stays_inside_its_word():
    assert [w.text for w in split_words("جـــدا")] == ["جـــدا"]


def test_punctuation_is_a_word_of_its_own():
    text = "(السوري)،"
    assert split_words(text) == [Word("(", 0, 1), Word("السوري", 1, 7), Word(")", 7, 8), Word("،", 8, 9)]


def test_joiners_stay_in_word_and_direction_marks_separate():
    text = "\u200fمحمد\u200c\u200dعلي\u200e"
    assert split_words(text) == [Word("محمد\u200c\u200dعلي", 1, 10)]


def test_decimal_number_is_one_word():
    assert [w.text for w in split_words("iPhone 15 و 3.5%")] == ["iPhone", "15", "و", "3.5", "%"]
    assert [w.text for w in split_words("10,000 و ١٢٫٥")] == ["10,000", "و", "١٢٫٥"]


# --- sentences -------------------------------------------------------------------------------------


def _texts(sentences: list[list[Word]]) -> list[list[str]]:
    return [[word.text for word in sentence] for sentence in sentences]


def test_sentences_break_after_end_punctuation():
    text = "قال محمد. هل جاء؟ نعم! ثم"
    assert _texts(split_sentences(text)) == [["قال", "محمد", "."], ["هل", "جاء", "؟"], ["نعم", "!"], ["ثم"]]


def test_sentences_break_at_line_breaks():
    text = "عنوان الخبر\nقال محمد\r\n\nدمشق"
    assert _texts(split_sentences(text)) == [["عنوان", "الخبر"], ["قال", "محمد"], ["دمشق"]]


def test_no_sentence_break_inside_a_number():
    assert _texts(split_sentences("ارتفع 3.5% اليوم.")) == [["ارتفع", "3.5", "%", "اليوم", "."]]


def test_sentence_end_then_newline_gives_no_empty_sentence():
    assert _texts(split_sentences("أ.\n\nب")) == [["أ", "."], ["ب"]]


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_sentences_concatenate_to_the_words(name):
    text = TRICKY[name]
    sentences = split_sentences(text)
    assert all(sentences), "an empty sentence"
    assert [word for sentence in sentences for word in sentence] == split_words(text)


# --- normalise_word --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, expected",
    [
        ("مُحَمَّد", "محمد"),
        ("جـــدا", "جدا"),
        ("إِنَّ", "إن"),
        ("الله", "الله"),
        ("\ufefb", "\u0644\u0627"),  # LAM WITH ALEF ligature -> lam + alef
        ("\ufef7", "\u0644\u0623"),  # LAM WITH ALEF WITH HAMZA ABOVE ligature -> lam + alef with hamza
        ("\ufdf2", "\u0627\u0644\u0644\u0647"),  # ALLAH ligature -> الله
        ("\ufe8d\ufedf\ufed8\ufe8e\ufeeb\ufeae\ufe93", "القاهرة"),  # presentation forms of القاهرة
        ("iPhone", "iPhone"),
    ],
)
def test_basic_normalisation(word, expected):
    assert normalise_word(word, "basic") == expected


@pytest.mark.parametrize("word", [SHADDA, TATWEEL, TATWEEL * 3, "\u064e\u064b"])
def test_basic_falls_back_to_the_raw_word(word):
    assert normalise_word(word, "basic") == word


@pytest.mark.parametrize("word", [SHADDA, TATWEEL, TATWEEL * 3, "\u064e\u064b", "&#0"])
def test_arabert_v02_leaves_nothing_where_arabert_drops_the_word(word):
    # the encoder holds such a word's place with the unknown piece (tests/test_arabert_parity.py)
    assert normalise_word(word, "arabert_v02") == ""


def test_none_keeps_the_word():
    assert normalise_word("مُحَمَّد", "none") == "مُحَمَّد"


@pytest.mark.parametrize(
    "word, expected",
    [
        ("https://example.com/a?b=1", "[رابط]"),
        ("http://x.org", "[رابط]"),
        ("www.aljazeera.net", "[رابط]"),
        ("aljazeera.net", "[رابط]"),
        ("someone@example.com", "[رابط]"),  # AraBERT's host-name rule comes before its e-mail rule
        ("someone@example", "[بريد]"),
        ("@user", "[مستخدم]"),
        ("WWW.BBC.CO.UK", "WW . BBC . CO . UK"),  # AraBERT's link rules are lower case; WWW is a repeat
        ("جداااااا", "جداا"),  # elongation cut to two
        ("هههههه", "هه"),
        ("جـــداااا", "جداا"),  # tatweel gone, then elongation cut
        ("مُحَمَّد", "محمد"),
        ("كتاب", "كتاب"),  # a double letter is not elongation
        ("2000", "2000"),  # digits are not elongation (AraBERT's own rule is (\D)\1{2,})
        ("١٠٠٠", "1000"),  # Arabic-Indic digits as ASCII
        ("و6", "و 6"),  # digits and Arabic letters: two parts of one word
        ("Y7خا", "Y 7 خا"),
        ("A4", "A4"),  # Latin letters stay with digits
        ("3/4", "3 - 4"),  # no / in AraBERT's vocabulary
        ("لأفغانستان؛", "لأفغانستان ؛"),
        ("3.5", "3 . 5"),
        ("Zürich", "Z rich"),  # characters AraBERT's vocabulary lacks are dropped
        ("ٱلله", "ٱ لله"),  # alef wasla stands apart
        ("\ufefb", "\u0644\u0627"),  # presentation forms give their letters back (AraBERT would drop them)
        ("<b>نص</b>", "نص"),
        ("&quot;نص&quot;", '" نص "'),
    ],
)
def test_arabert_v02_normalisation(word, expected):
    assert normalise_word(word, "arabert_v02") == expected
