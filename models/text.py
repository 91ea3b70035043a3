"""Arabic text handling: words with character offsets, sentence splitting, per-word normalisation.

Normalisation works on one word at a time and never merges words or moves text between them, so every
prediction maps back to a character span of the raw input. A scheme may write a word as several
space-separated parts (arabert_v02: `و6` -> `و 6`); the tokenizer keeps all their pieces as that word's.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


def _combining_marks() -> str:
    # Python's \w does not cover combining marks (tashkeel is Mn), which belong inside words.
    marks = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Mn", "Mc")]
    return re.escape("".join(marks))


# A word: letters, digits, underscore, combining marks, tatweel (Lm) and joiners; a `.` `,` `٫` `٬`
# between two digits stays inside the word (3.5, 10,000: one token in ANERcorp, and no sentence break
# inside a number). Any other visible character is a word of its own (punctuation, as ANERcorp writes
# it). Whitespace and invisible format characters (direction marks, BOM) separate words and belong to none.
JOINERS = "\u200c\u200d"
NUMBER_SEPARATORS = ".,\u066b\u066c"
INVISIBLE_SEPARATORS = "\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_WORD = re.compile(
    rf"(?:[\w{_combining_marks()}{JOINERS}]|(?<=\d)[{re.escape(NUMBER_SEPARATORS)}](?=\d))+"
    rf"|[^\s{INVISIBLE_SEPARATORS}]"
)
SENTENCE_END = frozenset({".", "!", "?", "؟", "…"})

TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
TATWEEL = "\u0640"
# Links, e-mail addresses and user mentions as AraBERT finds them (its placeholders replace the whole word):
# a word that starts with http or www, or with a host name (aljazeera.net, also user@bbc.com); any other word
# with an @ inside; an @ followed by a name
_URL = re.compile(r"http|www|[-A-Za-z0-9_@:%.+~#=]{2,}\.[a-z]{2,6}\b")
_EMAIL = re.compile(r"\S+@\S")
_MENTION = re.compile(r"@\w")
_REPEATS = re.compile(r"(\D)\1{2,}")  # as AraBERT's preprocess: letters, never digits (2000 stays 2000)
# Lone surrogates (text decoded with errors="surrogateescape") are not Unicode; Rust tokenizers refuse them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_utf8(data: bytes) -> str:
    """UTF-8 bytes to text, a leading BOM dropped. On bad bytes the UnicodeDecodeError's `start` is the offset
    in `data` itself (decoding with utf-8-sig would count from after the BOM)."""
    return data.decode("utf-8").removeprefix("\ufeff")


def split_words(text: str) -> list[Word]:
    """Words and punctuation of `text`, each with [start, end) character offsets into it."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def split_sentences(text: str) -> list[list[Word]]:
    """Words grouped into sentences: a sentence ends after . ! ? ؟ … or at a line break."""
    sentences: list[list[Word]] = []
    current: list[Word] = []
    for word in split_words(text):
        if current and "\n" in text[current[-1].end : word.start]:
            sentences.append(current)
            current = []
        current.append(word)
        if word.text in SENTENCE_END:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def _basic(word: str) -> str:
    # NFKC folds Arabic presentation forms (U+FB50-U+FEFF) back to the letters tokenizers know.
    word = unicodedata.normalize("NFKC", word)
    return TASHKEEL.sub("", word).replace(TATWEEL, "")


# AraBERT v0.2's preprocessing (ArabertPreprocessor of the `arabert` package, which AraBERT's authors run
# before pre-training and fine-tuning), restated for one word. It keeps Arabic letters, Latin letters and
# ASCII digits as they are; sets every other character it knows apart with spaces; drops the characters its
# vocabulary lacks. Those spaces reach the tokenizer, whose pre-tokenizer splits the word there into parts
# that all stay this word's pieces (word_ids), so the model reads AraBERT's pieces and the word keeps one tag.
# tests/test_arabert_parity.py compares the pieces with the package's, word by word, on ANERcorp.
_ARABERT_TASHKEEL = re.compile("[\u064b-\u0652]")  # the eight short-vowel marks and shadda, no other mark
_ARABERT_LETTER = "\u0621-\u063a\u0641-\u064a"  # hamza to ghain, feh to yeh: no tatweel, no marks
_ARABERT_JOINED = f"0-9A-Za-z{_ARABERT_LETTER}\\[\\]"  # kept together inside a word ([ ] for [رابط])
# kept, but as a part of its own: U+0640-U+066C (tatweel, the marks U+064B-U+065F, the Arabic-Indic digits,
# the Arabic percent and decimal signs), alef wasla and its neighbours (U+0671-U+0674), ASCII punctuation but
# & and / (AraBERT writes / as -), and the punctuation below (with two marks AraBERT's list happens to hold)
_ARABERT_APART = (
    "\u0640-\u066c\u0671-\u0674"
    + re.escape("!\"#$%'()*+,-.:;<=>?@\\^_`{|}~")
    + "\u00ab\u00b7\u00bb\u060c\u061b\u061f\u06da\u0b4d\u2013\u2014\u2018\u2019\u201c\u201d\u2026"
)
_ARABERT_DROPPED = re.compile(f"[^{_ARABERT_JOINED}{_ARABERT_APART}]")
_ARABERT_SET_APART = re.compile(f"([^{_ARABERT_JOINED}])")
# ASCII digits written against Arabic letters: the two runs become two parts, each set apart from what is
# around them (و6 -> و 6, Y7خا -> Y 7 خا); first digits then letters, then letters then digits, as AraBERT
# does (1ب2 -> 1 ب 2). Latin letters stay joined to digits (A4).
_ARABERT_DIGITS_LETTERS = re.compile(f"([0-9]+)([{_ARABERT_LETTER}]+)")
_ARABERT_LETTERS_DIGITS = re.compile(f"([{_ARABERT_LETTER}]+)([0-9]+)")
_MARKUP = re.compile("</?[^>]+>")  # an HTML tag inside a word
_ARABIC_INDIC_DIGITS = str.maketrans("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "0123456789")
# Arabic presentation forms (ligatures, positional shapes): AraBERT drops them with the rest of what its
# vocabulary lacks; NFKC gives back the letters they stand for, the one place where this scheme departs from it
_PRESENTATION_FORMS = re.compile("[\ufb50-\ufdff\ufe70-\ufefc]+")


def _arabert_v02(word: str) -> str:
    """What AraBERT v0.2's preprocessing makes of `word`: space-separated parts, or "" where it drops the whole
    word (a lone tatweel or mark); the encoder then holds the word's place with the unknown piece."""
    word = _PRESENTATION_FORMS.sub(lambda forms: unicodedata.normalize("NFKC", forms.group()), html.unescape(word))
    word = _ARABERT_TASHKEEL.sub("", word).replace(TATWEEL, "")
    if _URL.match(word):
        return "[رابط]"
    if _EMAIL.match(word):
        return "[بريد]"
    if _MENTION.match(word):
        return "[مستخدم]"
    word = _REPEATS.sub(r"\1\1", _MARKUP.sub(" ", word).translate(_ARABIC_INDIC_DIGITS))
    word = _ARABERT_SET_APART.sub(r" \1 ", word.replace("/", "-"))
    word = _ARABERT_LETTERS_DIGITS.sub(r" \1 \2 ", _ARABERT_DIGITS_LETTERS.sub(r" \1 \2 ", word))
    word = _ARABERT_DROPPED.sub(" ", word)
    return " ".join(word.split())


# basic falls back to the raw word where it would leave nothing (a lone diacritic), which a tokenizer may know
NORMALISERS = {"none": lambda word: word, "basic": lambda word: _basic(word) or word, "arabert_v02": _arabert_v02}


def normalise_word(word: str, scheme: str) -> str:
    """Normalise one word. A lone surrogate becomes U+FFFD, so the word still reaches the tokenizer (as the
    unknown piece)."""
    return _SURROGATE.sub("\ufffd", NORMALISERS[scheme](word))
