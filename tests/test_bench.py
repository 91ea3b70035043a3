"""The benchmark's own measuring: entity F1 of raw-text spans, scored the same way for the pipeline and us."""

from __future__ import annotations

import pytest

from bench.inference import raw_text_f1
from corpora.reader import Sentence

GOLD = [Sentence(("زار", "محمد", "علي", "كابول؛", "أمس"), {"entities": ("O", "B-PERS", "I-PERS", "B-LOC", "O")})]
TEXTS = [" ".join(sentence.words) for sentence in GOLD]  # "زار محمد علي كابول؛ أمس"


def test_spans_that_cover_the_gold_words_score_one():
    spans = [[(4, 12, "PERS"), (13, 18, "LOC")]]  # "محمد علي", "كابول" without its "؛"
    assert raw_text_f1(GOLD, TEXTS, spans) == pytest.approx(1.0)
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "PERS"), (13, 19, "LOC")]]) == pytest.approx(1.0)  # with "؛"


def test_wrong_split_type_and_empty_spans_cost():
    split = [[(4, 8, "PERS"), (9, 12, "PERS"), (13, 18, "LOC")]]  # two persons where gold has one
    assert raw_text_f1(GOLD, TEXTS, split) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "ORG"), (13, 18, "LOC")]]) == pytest.approx(0.5)
    # an empty span (the pipeline's lone "▁" piece) tags no word: the location is missed
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "PERS"), (13, 13, "LOC")]]) == pytest.approx(2 / 3)


def test_texts_must_be_the_gold_words_joined_by_spaces():
    with pytest.raises(ValueError, match="text 0 .* single spaces"):
        raw_text_f1(GOLD, ["زار  محمد علي كابول؛ أمس"], [[]])
