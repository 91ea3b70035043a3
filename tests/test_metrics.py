"""Tests for eval/metrics.py: expected figures are counted by hand, not taken from seqeval."""

from __future__ import annotations

import json
import warnings

import pytest
from seqeval.metrics import f1_score

from eval.metrics import format_markdown, format_table, score_layer, trigger_scores

# 3 gold spans (PERS, LOC, ORG); 2 predicted (PERS right, LOC at the wrong word) -> 1 correct.
GOLD = [["B-PERS", "I-PERS", "O", "B-LOC"], ["B-ORG", "O"]]
PRED = [["B-PERS", "I-PERS", "O", "O"], ["O", "B-LOC"]]


def test_hand_counted_micro_scores() -> None:
    scores = score_layer(GOLD, PRED)
    assert scores["micro_precision"] == pytest.approx(1 / 2)
    assert scores["micro_recall"] == pytest.approx(1 / 3)
    assert scores["micro_f1"] == pytest.approx(0.4)
    # Well-formed IOB2 on both sides: strict mode agrees.
    assert scores["strict_micro_f1"] == pytest.approx(0.4)
    assert (scores["n_sentences"], scores["n_words"]) == (2, 6)
    assert (scores["n_gold_spans"], scores["n_pred_spans"]) == (3, 2)
    # The headline figure is exactly seqeval's default f1_score (the AraBERT-comparable one).
    assert scores["micro_f1"] == pytest.approx(f1_score(GOLD, PRED))


def test_hand_counted_per_type_and_macro() -> None:
    scores = score_layer(GOLD, PRED)
    per_type = scores["per_type"]
    assert set(per_type) == {"PERS", "LOC", "ORG"}
    assert per_type["PERS"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["macro_f1"] == pytest.approx(1 / 3, abs=1e-6)
    assert scores["per_type_strict"] == per_type


def test_result_is_json_serialisable_plain_numbers() -> None:
    scores = score_layer(GOLD, PRED)
    assert json.loads(json.dumps(scores)) == scores
    assert type(scores["micro_f1"]) is float
    assert type(scores["per_type"]["PERS"]["support"]) is int


def test_default_and_strict_modes_differ_on_stray_inside_tag() -> None:
    gold = [["O", "B-LOC", "O"]]
    pred = [["O", "I-LOC", "O"]]  # I- after O: a chunk for conlleval, not for strict IOB2
    scores = score_layer(gold, pred)
    assert scores["micro_f1"] == 1.0
    assert scores["strict_micro_f1"] == 0.0
    assert scores["strict_micro_precision"] == 0.0
    assert scores["n_pred_spans"] == 1
    assert scores["n_pred_spans_strict"] == 0
    assert scores["per_type"]["LOC"]["f1"] == 1.0
    assert scores["per_type_strict"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_types_never_predicted_do_not_warn() -> None:
    gold = [["B-PERS", "O", "B-LOC"]]
    pred = [["O", "O", "O"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_layer(gold, pred)
    assert scores["micro_f1"] == 0.0
    assert scores["per_type"]["LOC"]["support"] == 1


def test_no_spans_anywhere_scores_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_layer([["O", "O"], []], [["O", "O"], []])
    assert scores["micro_f1"] == 0.0 and scores["macro_f1"] == 0.0
    assert scores["per_type"] == {} and scores["per_type_strict"] == {}
    assert "micro avg" in format_table("empty", scores)


def test_tuples_are_scored_like_lists() -> None:
    as_tuples = score_layer([tuple(s) for s in GOLD], [tuple(s) for s in PRED])
    assert as_tuples == score_layer(GOLD, PRED)


def test_sentence_length_mismatch_names_the_sentence() -> None:
    pred = [PRED[0], ["O", "B-LOC", "O"]]
    with pytest.raises(ValueError, match=r"sentence 1\b.*2 tags.*3"):
        score_layer(GOLD, pred)


def test_sentence_count_mismatch_and_empty_input_raise() -> None:
    with pytest.raises(ValueError, match="number of sentences"):
        score_layer(GOLD, PRED[:1])
    with pytest.raises(ValueError, match="empty"):
        score_layer([], [])
    with pytest.raises(ValueError, match="number of sentences"):
        trigger_scores(GOLD, [])


def test_malformed_tag_raises() -> None:
    with pytest.raises(ValueError, match=r"sentence 0, word 1: predicted tag 'PERS'"):
        score_layer([["O", "B-PERS"]], [["O", "PERS"]])


# Gold triggers: Conflict.Attack (words 0-1), Movement.Transport (3), Life.Be_Born (5).
# Predicted: Attack right; Conflict.Demonstrate at 3 (wrong type and top type);
# Life.Die at 5 (wrong subtype, right top type); a spurious Justice.Arrest at 6.
EV_GOLD = [["B-Conflict.Attack", "I-Conflict.Attack", "O", "B-Movement.Transport", "O", "B-Life.Be_Born", "O"]]
EV_PRED = [
    ["B-Conflict.Attack", "I-Conflict.Attack", "O", "B-Conflict.Demonstrate", "O", "B-Life.Die", "B-Justice.Arrest"]
]


def test_trigger_identification_vs_classification() -> None:
    scores = trigger_scores(EV_GOLD, EV_PRED)
    # identification: 3 gold, 4 predicted, 3 boundaries right
    assert scores["identification"]["precision"] == pytest.approx(3 / 4)
    assert scores["identification"]["recall"] == pytest.approx(1.0)
    assert scores["identification"]["f1"] == pytest.approx(6 / 7, abs=1e-6)
    # classification: only Conflict.Attack is right
    assert scores["classification"]["precision"] == pytest.approx(1 / 4)
    assert scores["classification"]["recall"] == pytest.approx(1 / 3, abs=1e-6)
    assert scores["classification"]["f1"] == pytest.approx(2 / 7, abs=1e-6)


def test_trigger_top_type_cuts_at_first_dot() -> None:
    scores = trigger_scores(EV_GOLD, EV_PRED)
    # top types: Conflict and Life right, Movement vs Conflict wrong, Justice spurious
    assert scores["classification_top_type"]["precision"] == pytest.approx(2 / 4)
    assert scores["classification_top_type"]["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert scores["classification_top_type"]["f1"] == pytest.approx(4 / 7, abs=1e-6)
    # The first dot, not the last: `A.b.c` and `A.x` share the top type `A`.
    deep = trigger_scores([["B-A.b.c", "O"]], [["B-A.x", "O"]])
    assert deep["classification_top_type"]["f1"] == 1.0
    assert deep["classification"]["f1"] == 0.0


def test_trigger_subtype_switch_inside_a_span() -> None:
    # Same boundaries and top type, subtype changes mid-span: only full classification misses.
    scores = trigger_scores([["B-Life.Die", "I-Life.Die"]], [["B-Life.Die", "I-Life.Injure"]])
    assert scores["identification"]["f1"] == 1.0
    assert scores["classification_top_type"]["f1"] == 1.0
    assert scores["classification"]["f1"] == 0.0


def test_table_and_markdown_list_every_type() -> None:
    scores = score_layer(EV_GOLD, EV_PRED)
    table = format_table("events", scores)
    markdown = format_markdown("events", scores)
    types = [
        "Conflict.Attack",
        "Movement.Transport",
        "Life.Be_Born",
        "Conflict.Demonstrate",
        "Life.Die",
        "Justice.Arrest",
    ]
    assert set(scores["per_type"]) == set(types)
    for kind in types:
        assert kind in table
        assert f"| {kind} |" in markdown
    assert table.startswith("events: micro F1 28.57 (strict 28.57), macro F1 16.67")
    assert markdown.startswith("## events\n")
    assert "| Conflict.Attack | 100.00 | 100.00 | 100.00 | 100.00 | 1 |" in markdown


def test_table_shows_percentages_with_two_decimals() -> None:
    table = format_table("ner", score_layer(GOLD, PRED))
    assert "micro F1 40.00" in table
    assert "33.33" in table  # macro F1 and micro recall
    pers_row = next(line for line in table.splitlines() if line.strip().startswith("PERS"))
    assert pers_row.split()[1:] == ["100.00", "100.00", "100.00", "100.00", "1"]
