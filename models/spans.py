"""Spans: a sentence's word tags read as character ranges of its text.

The one place where word tags become Span objects: the Tagger's output (models/tagger.py) and both lines of
the gold-versus-predicted report (eval/html.py) are built here, so their offsets, texts and scores agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.labels import chunks
from models.text import Word


@dataclass(frozen=True)
class Span:
    layer: str
    label: str
    start: int  # character offsets into the raw text: text == raw[start:end]
    end: int
    text: str
    score: float  # mean probability of the predicted tags over the span's words (1.0 for gold)


def word_spans(
    text: str, words: Sequence[Word], layer: str, tags: Sequence[str], scores: Sequence[float] | None = None
) -> dict[tuple[int, int], Span]:
    """The spans of one layer's tags over a sentence's words (the chunks seqeval's default mode reads), in word
    order, keyed by their words [first, end). `words` carry their offsets into `text`; `scores` are the tags'
    probabilities, one per word (None, for gold tags: every span scores 1.0)."""
    spans = {}
    for first, end, label in chunks(list(tags)):
        start, stop = words[first].start, words[end - 1].end
        score = 1.0 if scores is None else round(sum(scores[first:end]) / (end - first), 4)
        spans[(first, end)] = Span(layer, label, start, stop, text[start:stop], score)
    return spans
