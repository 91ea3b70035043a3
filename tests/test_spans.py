"""models/spans.py: word tags become character spans the same way for the Tagger and the evaluation report."""

from __future__ import annotations

from corpora.reader import Sentence
from eval.html import compare_sentence, join_words
from models.spans import Span, word_spans
from models.tagger import WordTags
from models.text import split_sentences

TEXT = "قال  بشار الأسد\u200f في دمشق"


def test_spans_slice_the_text_at_the_words_offsets_and_score_the_mean():
    (words,) = split_sentences(TEXT)  # two spaces and a direction mark between words: offsets, not positions
    tags = ["O", "B-PERS", "I-PERS", "O", "I-LOC"]  # a stray I- starts a span, as seqeval's default mode reads it
    spans = word_spans(TEXT, words, "entities", tags, [0.9, 0.8, 0.5, 0.99, 0.33333])
    assert spans == {
        (1, 3): Span("entities", "PERS", 5, 15, "بشار الأسد", 0.65),
        (4, 5): Span("entities", "LOC", 20, 24, "دمشق", 0.3333),
    }
    assert all(TEXT[span.start : span.end] == span.text for span in spans.values())


def test_gold_tags_score_one_and_no_span_is_empty():
    text, words = join_words(["في", "دمشق"])
    assert word_spans(text, words, "entities", ("O", "B-LOC")) == {(1, 2): Span("entities", "LOC", 3, 7, "دمشق", 1.0)}
    assert word_spans(text, words, "entities", ("O", "O")) == {}


def test_the_report_lines_are_the_spans_of_each_side():
    words = ("قال", "بشار", "الأسد", "في", "دمشق")
    gold = {"entities": ("O", "B-PERS", "I-PERS", "O", "B-LOC")}
    predicted = WordTags({"entities": ["O", "B-PERS", "O", "O", "B-ORG"]}, {"entities": [0.9, 0.7, 0.6, 0.9, 0.5]})
    text, gold_spans, predicted_spans, _ = compare_sentence(Sentence(words, gold), predicted, ["entities"])
    placed = join_words(words)[1]
    assert gold_spans == list(word_spans(text, placed, "entities", gold["entities"]).values())
    assert predicted_spans == [
        Span("entities", "PERS", 4, 8, "بشار", 0.7),
        Span("entities", "ORG", 18, 22, "دمشق", 0.5),
    ]
