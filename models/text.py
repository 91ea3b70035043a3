"""Arabic text handling: words with character offsets, sentence splitting, per-word normalisation.

Normalisation works on one word at a time and never merges or splits words, so every
prediction maps back to a character span of the raw input.
"""
from __future__ import annotations

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
_WORD = re.compile(
    rf"(?:[\w{_combining_marks()}\u200c\u200d]|(?<=\d)[.,\u066b\u066c](?=\d))+"
    r"|[^\s\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
SENTENCE_END = frozenset({".", "!", "?", "؟", "…"})

TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
TATWEEL = "\u0640"
_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_EMAIL = re.compile(r"^\S+@\S+\.\S+$")
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


def _arabert_v02(word: str) -> str:
    # The per-word part of AraBERT v0.2's preprocessing: its own placeholders for links and
    # e-mail addresses, no diacritics or tatweel, and letter elongation cut to two repeats.
    if _URL.match(word):
        return "[رابط]"
    if _EMAIL.match(word):
        return "[بريد]"
    return _REPEATS.sub(r"\1\1", _basic(word))


NORMALISERS = {"none": lambda word: word, "basic": _basic, "arabert_v02": _arabert_v02}


def normalise_word(word: str, scheme: str) -> str:
    """Normalise one word; falls back to the raw word if normalising would leave nothing (a lone diacritic).
    A lone surrogate becomes U+FFFD, so the word still reaches the tokenizer (as the unknown piece)."""
    return _SURROGATE.sub("\ufffd", NORMALISERS[scheme](word) or word)
