"""Tests for eval/arguments.py: every expected figure is counted by hand."""

from __future__ import annotations

import json

import pytest

from eval.arguments import argument_scores, event_accuracy, format_argument_scores, rule_arguments
from models.arguments import WordArgument as Arg

ZERO = {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_perfect_match() -> None:
    gold = [[Arg((0, 1), (2, 4), "Agent"), Arg((0, 1), (5, 6), "Place")], [Arg((3, 4), (0, 1), "Patient")]]
    scores = argument_scores(gold, [list(reversed(sentence)) for sentence in gold])  # order does not matter
    for view in ("labelled", "identification"):
        assert scores[view] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n_gold": 3, "n_pred": 3, "n_correct": 3}
    assert scores["per_role"] == {
        role: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for role in ("Agent", "Patient", "Place")
    }


def test_wrong_role_counts_for_identification_only() -> None:
    scores = argument_scores([[Arg((0, 1), (2, 3), "Agent")]], [[Arg((0, 1), (2, 3), "Patient")]])
    assert scores["labelled"] == {**ZERO, "n_gold": 1, "n_pred": 1, "n_correct": 0}
    assert scores["identification"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "n_gold": 1,
        "n_pred": 1,
        "n_correct": 1,
    }
    # The role only ever predicted still gets a row, with support 0.
    assert scores["per_role"] == {"Agent": {**ZERO, "support": 1}, "Patient": {**ZERO, "support": 0}}


def test_wrong_entity_boundary_is_wrong_in_both_views() -> None:
    # Gold entity is two words (2, 4); the prediction stops one word early.
    scores = argument_scores([[Arg((0, 1), (2, 4), "Agent")]], [[Arg((0, 1), (2, 3), "Agent")]])
    assert scores["labelled"] == {**ZERO, "n_gold": 1, "n_pred": 1, "n_correct": 0}
    assert scores["identification"] == scores["labelled"]


def test_spurious_and_missed_in_different_sentences() -> None:
    # The spurious argument of sentence 0 is the very argument missed in sentence 1: sets are per sentence,
    # so they must not cancel out.
    stray = Arg((1, 2), (4, 5), "Place")
    gold = [[Arg((0, 1), (2, 3), "Agent"), Arg((0, 1), (6, 7), "Place")], [Arg((1, 2), (3, 4), "Agent"), stray]]
    pred = [[Arg((0, 1), (2, 3), "Agent"), Arg((0, 1), (6, 7), "Place"), stray], [Arg((1, 2), (3, 4), "Agent")]]
    scores = argument_scores(gold, pred)
    # 4 gold, 4 predicted, 3 correct
    assert scores["labelled"] == {
        "precision": 0.75,
        "recall": 0.75,
        "f1": 0.75,
        "n_gold": 4,
        "n_pred": 4,
        "n_correct": 3,
    }
    assert scores["identification"] == scores["labelled"]
    # Agent: 2 gold, 2 predicted, 2 right. Place: 2 gold, 2 predicted (one in the wrong sentence), 1 right.
    assert scores["per_role"] == {
        "Agent": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
        "Place": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
    }


def test_per_role_counts_with_unequal_precision_and_recall() -> None:
    gold = [
        [
            Arg((0, 1), (1, 2), "Agent"),
            Arg((0, 1), (3, 4), "Patient"),
            Arg((0, 1), (5, 6), "Place"),
            Arg((0, 1), (7, 8), "Place"),
        ]
    ]
    # Agent right; the Patient predicted as Agent; one Place right, one missed.
    pred = [[Arg((0, 1), (1, 2), "Agent"), Arg((0, 1), (3, 4), "Agent"), Arg((0, 1), (5, 6), "Place")]]
    scores = argument_scores(gold, pred)
    assert scores["labelled"] == {
        "precision": 0.666667,
        "recall": 0.5,
        "f1": 0.571429,
        "n_gold": 4,
        "n_pred": 3,
        "n_correct": 2,
    }
    assert scores["identification"] == {
        "precision": 1.0,
        "recall": 0.75,
        "f1": 0.857143,
        "n_gold": 4,
        "n_pred": 3,
        "n_correct": 3,
    }
    assert scores["per_role"] == {
        "Agent": {"precision": 0.5, "recall": 1.0, "f1": 0.666667, "support": 1},  # 1 gold, 2 predicted
        "Patient": {**ZERO, "support": 1},
        "Place": {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2},
    }
    assert json.loads(json.dumps(scores)) == scores


def test_no_arguments_anywhere_scores_zero() -> None:
    for gold, pred in (([[], []], [[], []]), ([], [])):
        scores = argument_scores(gold, pred)
        assert scores["labelled"] == scores["identification"] == {**ZERO, "n_gold": 0, "n_pred": 0, "n_correct": 0}
        assert scores["per_role"] == {}
        assert "micro avg" in format_argument_scores("empty", scores, markdown=False)
    assert event_accuracy([], [], [], []) == {"events": 0, "correct": 0, "accuracy": 0.0}
    assert event_accuracy([[]], [[]], [[]], [[]]) == {"events": 0, "correct": 0, "accuracy": 0.0}


def test_bad_input_raises() -> None:
    one = [Arg((0, 1), (2, 3), "Agent")]
    with pytest.raises(ValueError, match="number of sentences"):
        argument_scores([one, []], [one])
    with pytest.raises(ValueError, match=r"sentence 1: predicted argument repeated"):
        argument_scores([[], one], [[], one + one])
    with pytest.raises(ValueError, match=r"sentence 0: a gold trigger-entity pair has more than one role"):
        argument_scores([one + [Arg((0, 1), (2, 3), "Patient")]], [[]])
    events = [[(0, 1, "Conflict.Attack")]]
    with pytest.raises(ValueError, match="number of sentences"):
        event_accuracy(events, events, [], [])
    with pytest.raises(ValueError, match="number of sentences"):
        event_accuracy(events, [], [one], [one])
    with pytest.raises(ValueError, match=r"sentence 0: gold event repeated"):
        event_accuracy([events[0] * 2], events, [one], [one])


def test_event_level_view() -> None:
    gold_events = [
        [
            (0, 1, "Conflict.Attack"),
            (7, 8, "Life.Die"),
            (9, 10, "Contact.Meet"),
            (15, 16, "Movement.Transport"),
            (21, 22, "Justice.Arrest_Jail"),
            (23, 24, "Life.Injure"),
        ]
    ]
    pred_events = [
        [
            (0, 1, "Conflict.Attack"),
            (7, 8, "Life.Injure"),
            (9, 10, "Contact.Meet"),
            (15, 16, "Movement.Transport"),
            (21, 22, "Justice.Arrest_Jail"),
            (23, 24, "Life.Injure"),
            (25, 26, "Conflict.Demonstrate"),
        ]
    ]  # a spurious event does not enter the count
    gold_args = [
        [
            Arg((0, 1), (2, 3), "Agent"),
            Arg((0, 1), (5, 6), "Place"),  # attack: both right
            Arg((7, 8), (6, 7), "Patient"),  # arguments right, but the subtype is wrong
            Arg((9, 10), (11, 12), "Agent"),
            Arg((9, 10), (13, 14), "Agent"),  # meet: one missed
            Arg((15, 16), (17, 18), "Agent"),
        ]
    ]  # transport: an extra Place predicted
    # arrest: no arguments in gold or predicted (right); injure: none in gold, one predicted (wrong)
    pred_args = [
        [
            Arg((0, 1), (2, 3), "Agent"),
            Arg((0, 1), (5, 6), "Place"),
            Arg((7, 8), (6, 7), "Patient"),
            Arg((9, 10), (11, 12), "Agent"),
            Arg((15, 16), (17, 18), "Agent"),
            Arg((15, 16), (19, 20), "Place"),
            Arg((23, 24), (22, 23), "Patient"),
            Arg((25, 26), (27, 28), "Agent"),
        ]
    ]
    assert event_accuracy(gold_events, pred_events, gold_args, pred_args) == {
        "events": 6,
        "correct": 2,
        "accuracy": 0.333333,
    }
    # Right arguments with the right role only: the attack's Agent as Patient makes it wrong too.
    wrong_role = [[Arg((0, 1), (2, 3), "Patient"), *pred_args[0][1:]]]
    assert event_accuracy(gold_events, pred_events, gold_args, wrong_role)["correct"] == 1


def test_rule_baseline_verb_trigger() -> None:
    # "Hamas attacked positions of the Israeli army in Gaza, the police said."
    words = ["أعلنت", "الشرطة", "أن", "حماس", "هاجمت", "مواقع", "الجيش", "الإسرائيلي", "في", "غزة"]
    entities = [(3, 4, "ORG"), (7, 8, "MISC"), (9, 10, "LOC")]
    assert rule_arguments(words, [(4, 5, "Conflict.Attack")], entities) == [
        Arg((4, 5), (3, 4), "Agent"),  # nearest before a verb
        Arg((4, 5), (7, 8), "Patient"),  # nearest after a verb
        Arg((4, 5), (9, 10), "Place"),
    ]


def test_rule_baseline_noun_trigger() -> None:
    # "Abbas said after the meeting with Mubarak in Cairo ...": after a noun the genitive side is an Agent too.
    words = ["أكد", "عباس", "بعد", "الاجتماع", "مع", "مبارك", "في", "القاهرة"]
    entities = [(1, 2, "PERS"), (5, 6, "PERS"), (7, 8, "LOC")]
    expected = [Arg((3, 4), (1, 2), "Agent"), Arg((3, 4), (5, 6), "Agent"), Arg((3, 4), (7, 8), "Place")]
    assert rule_arguments(words, [(3, 4, "Contact.Meet")], entities) == expected
    for clitic in ("وال", "بال", "وبال"):  # the article behind clitics is still noun-like
        words[3] = clitic + "اجتماع"
        assert rule_arguments(words, [(3, 4, "Contact.Meet")], entities) == expected
    words[3] = "اجتماع"  # indefinite: read as verb-like, so the entity after it is the Patient
    assert Arg((3, 4), (5, 6), "Patient") in rule_arguments(words, [(3, 4, "Contact.Meet")], entities)


def test_rule_baseline_windows_and_nearest_only() -> None:
    # "The United Nations said the forces arrested Ahmed Ali yesterday in central Baghdad."
    words = ["الأمم", "المتحدة", "قالت", "إن", "القوات", "اعتقلت", "أحمد", "علي", "أمس", "في", "وسط", "بغداد"]
    entities = [(0, 2, "ORG"), (6, 8, "PERS"), (11, 12, "LOC")]
    arrest = [(5, 6, "Justice.Arrest_Jail")]
    # ORG is 3 words before the trigger, PERS adjacent after, LOC 5 words after.
    assert rule_arguments(words, arrest, entities, place_window=5, role_window=2) == [
        Arg((5, 6), (6, 8), "Patient"),
        Arg((5, 6), (11, 12), "Place"),
    ]
    assert rule_arguments(words, arrest, entities, place_window=4, role_window=3) == [
        Arg((5, 6), (0, 2), "Agent"),
        Arg((5, 6), (6, 8), "Patient"),
    ]
    # Only the nearest actor on each side; an entity overlapping a trigger is never its argument.
    two_after = [(6, 7, "PERS"), (7, 8, "PERS")]
    assert rule_arguments(words, arrest, two_after) == [Arg((5, 6), (6, 7), "Patient")]
    assert rule_arguments(words, [(6, 8, "Life.Die")], [(6, 7, "PERS"), (7, 8, "LOC")]) == []
    assert rule_arguments(words, [], entities) == []


def test_format_plain_and_markdown() -> None:
    gold = [[Arg((0, 1), (1, 2), "Agent"), Arg((0, 1), (3, 4), "Place")]]
    pred = [[Arg((0, 1), (1, 2), "Agent"), Arg((0, 1), (3, 4), "Patient")]]
    scores = argument_scores(gold, pred)  # labelled 1 of 2, identification 2 of 2
    table = format_argument_scores("arguments", scores, markdown=False)
    assert table.startswith(
        "arguments: labelled F1 50.00 (P 50.00, R 50.00), identification F1 100.00; "
        "2 gold / 2 predicted / 1 correct arguments"
    )
    agent = next(line for line in table.splitlines() if line.strip().startswith("Agent"))
    assert agent.split() == ["Agent", "100.00", "100.00", "100.00", "1"]
    assert "Patient" in table and "micro avg" in table
    markdown = format_argument_scores("arguments", scores, markdown=True)
    assert markdown.startswith("## arguments\n\nlabelled F1 50.00")
    assert "| role | P | R | F1 | support |" in markdown
    assert "| Place | 0.00 | 0.00 | 0.00 | 1 |" in markdown
    assert "| micro avg | 50.00 | 50.00 | 50.00 | 2 |" in markdown
