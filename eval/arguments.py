"""Event-argument scores, an event-level view of them, and the rule baseline they are compared with.

seqeval scores spans, not links between spans, so the argument metric is counted here by hand. An
argument is one (trigger span, entity span, role) of one sentence; predictions are matched to gold
exactly, as sets per sentence:

* labelled:       trigger span, entity span and role all right (the headline figure);
* identification: trigger span and entity span right, role ignored.

All scores are fractions in 0..1, rounded like eval/metrics.py's, and 0.0 where a ratio has nothing
to divide by.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, TypeVar

from eval.metrics import _pct, _round
from models.arguments import WordArgument

__all__ = ["argument_scores", "event_accuracy", "rule_arguments", "format_argument_scores"]

Span = tuple[int, int, str]  # (first word, end word exclusive, type): an event subtype or an entity type
Item = TypeVar("Item", bound=Hashable)


def _as_sets(
    gold: Sequence[Iterable[Item]], pred: Sequence[Iterable[Item]], what: str
) -> list[tuple[set[Item], set[Item]]]:
    """Per sentence (gold set, predicted set).

    Inputs come from the harness, sentence-aligned and free of repeats; a misalignment or a repeat is a
    bug upstream that set arithmetic would hide, so it fails loudly.
    """
    if len(gold) != len(pred):
        raise ValueError(f"number of sentences differs: gold has {len(gold)}, predictions have {len(pred)}")
    pairs = []
    for index, sides in enumerate(zip(gold, pred)):
        sets = []
        for side, items in zip(("gold", "predicted"), sides):
            items = list(items)
            repeated = [item for item, count in Counter(items).items() if count > 1]
            if repeated:
                raise ValueError(f"sentence {index}: {side} {what} repeated: {repeated[0]}")
            sets.append(set(items))
        pairs.append((sets[0], sets[1]))
    return pairs


def _prf(n_correct: int, n_gold: int, n_pred: int) -> dict[str, float]:
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": _round(precision), "recall": _round(recall), "f1": _round(f1)}


def _micro(pairs: list[tuple[set[Hashable], set[Hashable]]]) -> dict[str, Any]:
    n_gold = sum(len(gold) for gold, _ in pairs)
    n_pred = sum(len(pred) for _, pred in pairs)
    n_correct = sum(len(gold & pred) for gold, pred in pairs)
    return {**_prf(n_correct, n_gold, n_pred), "n_gold": n_gold, "n_pred": n_pred, "n_correct": n_correct}


def _links(arguments: set[WordArgument], index: int, side: str) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    """The (trigger, entity) pairs of one sentence's arguments: what identification scores."""
    links = {(a.trigger, a.entity) for a in arguments}
    # An entity takes one role in an event; two would make identification count one link for two arguments.
    if len(links) < len(arguments):
        raise ValueError(f"sentence {index}: a {side} trigger-entity pair has more than one role")
    return links


def argument_scores(gold: Sequence[Iterable[WordArgument]], pred: Sequence[Iterable[WordArgument]]) -> dict[str, Any]:
    """Labelled and identification micro P/R/F1 over all sentences, and labelled P/R/F1 per role.

    `gold` and `pred` hold one collection of arguments per sentence, aligned. Returns a JSON-serialisable
    dict: {"labelled": {precision, recall, f1, n_gold, n_pred, n_correct}, "identification": {same},
    "per_role": {role: {precision, recall, f1, support}}} with a row for every role seen in gold or
    predictions (a role that is only ever predicted scores 0 with support 0).
    """
    pairs = _as_sets(gold, pred, "argument")
    unlabelled = [
        (_links(gold_set, index, "gold"), _links(pred_set, index, "predicted"))
        for index, (gold_set, pred_set) in enumerate(pairs)
    ]
    gold_roles = Counter(a.role for gold_set, _ in pairs for a in gold_set)
    pred_roles = Counter(a.role for _, pred_set in pairs for a in pred_set)
    correct_roles = Counter(a.role for gold_set, pred_set in pairs for a in gold_set & pred_set)
    per_role = {
        role: {**_prf(correct_roles[role], gold_roles[role], pred_roles[role]), "support": gold_roles[role]}
        for role in sorted(gold_roles | pred_roles)
    }
    return {"labelled": _micro(pairs), "identification": _micro(unlabelled), "per_role": per_role}


def event_accuracy(
    gold_events: Sequence[Iterable[Span]],
    pred_events: Sequence[Iterable[Span]],
    gold_arguments: Sequence[Iterable[WordArgument]],
    pred_arguments: Sequence[Iterable[WordArgument]],
) -> dict[str, Any]:
    """The share of gold events a reader would find fully right: {"events", "correct", "accuracy"}.

    A gold event (first, end, subtype) is right when a predicted trigger has its span and subtype and the
    predicted (entity span, role) pairs of that trigger are exactly the gold ones: none missing, none
    extra, so an event without gold arguments is right only if none are predicted for it. Micro F1 hides
    this: an event with one of its four arguments wrong still earns 3 of 4 there, and nothing here.
    """
    if len(gold_events) != len(gold_arguments):
        raise ValueError(
            f"number of sentences differs: gold events have {len(gold_events)}, gold arguments {len(gold_arguments)}"
        )
    events = _as_sets(gold_events, pred_events, "event")
    arguments = _as_sets(gold_arguments, pred_arguments, "argument")
    correct = 0
    for (gold_set, pred_set), (gold_args, pred_args) in zip(events, arguments):
        for first, end, _ in gold_set & pred_set:
            trigger = (first, end)
            if {(a.entity, a.role) for a in gold_args if a.trigger == trigger} == {
                (a.entity, a.role) for a in pred_args if a.trigger == trigger
            }:
                correct += 1
    n_events = sum(len(gold_set) for gold_set, _ in events)
    return {"events": n_events, "correct": correct, "accuracy": _round(correct / n_events if n_events else 0.0)}


# ---------------------------------------------------------------- rule baseline

# Windows in words strictly between trigger and entity (0: adjacent), the best labelled F1 on the train split.
PLACE_WINDOW = 12
ROLE_WINDOW = 6
# ال, alone or after a conjunction and/or a preposition (وال, بال, وبال), or contracted after ل (لل).
_NOUN_LIKE = re.compile(r"^(?:[وف]?[بكل]?ال|[وف]?لل)")


def _gap(trigger: tuple[int, int], span: Span) -> int:
    """Words strictly between a trigger and an entity; negative when they overlap (never an argument)."""
    return trigger[0] - span[1] if span[1] <= trigger[0] else span[0] - trigger[1]


def rule_arguments(
    words: Sequence[str],
    events: Iterable[Span],
    entities: Iterable[Span],
    *,
    place_window: int = PLACE_WINDOW,
    role_window: int = ROLE_WINDOW,
) -> list[WordArgument]:
    """The arguments a first rule-based attempt finds in one sentence, for comparison with the model.

    For each trigger, counting the words strictly between it and an entity:

    1. every LOC at most `place_window` words away, on either side, is the Place;
    2. of the PERS, ORG and MISC entities at most `role_window` words away, the nearest one before the
       trigger is the Agent (the subject before a verb, the owner before a noun), and the nearest one after
       it is the Patient of a verb-like trigger (its object) but the Agent of a noun-like one (a verbal
       noun's genitive names the doer: زيارة بوش، لقاء مبارك). A trigger is noun-like when its first word
       starts with ال, possibly behind clitics (وال، بال، لل).

    Alternatives that lost on train (labelled F1 0.41 here): a Place only after في/ب, separate or glued
    on, 0.31 (0.35 adding إلى/من), as a place named near a trigger is mostly its Place anyway; the first
    entity after a verb as its Agent (Arabic's verb-subject order) gained under a point but lost nearly
    every Patient.
    """
    entities = [(first, end, kind) for first, end, kind in entities]
    found = []
    for first, end, _ in events:
        trigger = (first, end)
        found += [
            WordArgument(trigger, span[:2], "Place")
            for span in entities
            if span[2] == "LOC" and 0 <= _gap(trigger, span) <= place_window
        ]
        actors = [
            span for span in entities if span[2] in ("PERS", "ORG", "MISC") and 0 <= _gap(trigger, span) <= role_window
        ]
        before = [span for span in actors if span[1] <= first]
        after = [span for span in actors if span[0] >= end]
        if before:
            found.append(WordArgument(trigger, max(before)[:2], "Agent"))
        if after:
            role = "Agent" if _NOUN_LIKE.match(words[first]) else "Patient"
            found.append(WordArgument(trigger, min(after)[:2], role))
    return sorted(found)


# ---------------------------------------------------------------- reports

_HEADER = ("role", "P", "R", "F1", "support")


def _summary(scores: dict[str, Any]) -> str:
    labelled, identification = scores["labelled"], scores["identification"]
    return (
        f"labelled F1 {_pct(labelled['f1'])} (P {_pct(labelled['precision'])}, R {_pct(labelled['recall'])}), "
        f"identification F1 {_pct(identification['f1'])}; "
        f"{labelled['n_gold']} gold / {labelled['n_pred']} predicted / {labelled['n_correct']} correct arguments"
    )


def _rows(scores: dict[str, Any]) -> list[tuple[str, ...]]:
    """(role, P, R, F1, support) per role, then the labelled micro row; percentages as text."""
    rows = [
        (role, _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]), str(row["support"]))
        for role, row in scores["per_role"].items()
    ]
    labelled = scores["labelled"]
    rows.append(
        (
            "micro avg",
            _pct(labelled["precision"]),
            _pct(labelled["recall"]),
            _pct(labelled["f1"]),
            str(labelled["n_gold"]),
        )
    )
    return rows


def format_argument_scores(name: str, scores: dict[str, Any], markdown: bool) -> str:
    """argument_scores as a report: a summary line and a per-role table, laid out like eval/metrics.py's.

    Plain text for the terminal, or (markdown=True) a `## name` section for the .md report.
    """
    rows = _rows(scores)
    if markdown:
        lines = [
            f"## {name}",
            "",
            _summary(scores) + ".",
            "",
            "| " + " | ".join(_HEADER) + " |",
            "|---|" + "---:|" * (len(_HEADER) - 1),
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    width = max(len(row[0]) for row in [_HEADER, *rows])
    lines = [f"{name}: {_summary(scores)}"]
    lines += [f"  {row[0]:<{width}}" + "".join(f"  {cell:>9}" for cell in row[1:]) for row in [_HEADER, *rows]]
    return "\n".join(lines)
