"""Gold and predicted spans of one layer side by side, matched by exact word boundaries.

Spans are the chunks seqeval's default mode reads (models/labels.py `chunks`). Each boundary pair
present in gold or predictions gets one outcome:

* correct:    gold and prediction cover the same words with the same type;
* wrong_type: the same words, another type;
* missed:     a gold span whose exact boundaries no prediction has;
* spurious:   a predicted span whose exact boundaries no gold span has.

A boundary error (the spans overlap but differ) is one missed plus one spurious span: exactly what it
costs in seqeval's recall and precision, so these counts add up to the reported F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.labels import chunks

CORRECT, WRONG_TYPE, MISSED, SPURIOUS = "correct", "wrong_type", "missed", "spurious"
OUTCOMES = (CORRECT, WRONG_TYPE, MISSED, SPURIOUS)


@dataclass(frozen=True)
class SpanMatch:
    first: int  # word index
    end: int  # word index, exclusive
    gold: str | None  # type, None where no gold span has these boundaries
    predicted: str | None

    @property
    def outcome(self) -> str:
        return outcome_of(self.gold, self.predicted)


def outcome_of(gold: str | None, predicted: str | None) -> str:
    """What a gold label and a predicted one at the same place (None: nothing there) make of it."""
    if gold is None:
        return SPURIOUS
    if predicted is None:
        return MISSED
    return CORRECT if gold == predicted else WRONG_TYPE


def match_spans(gold_tags: Sequence[str], predicted_tags: Sequence[str]) -> list[SpanMatch]:
    """Every gold or predicted span of one sentence, in word order."""
    # Spans of one layer never overlap, so their boundaries identify them.
    gold = {(first, end): kind for first, end, kind in chunks(list(gold_tags))}
    predicted = {(first, end): kind for first, end, kind in chunks(list(predicted_tags))}
    return [
        SpanMatch(first, end, gold.get((first, end)), predicted.get((first, end)))
        for first, end in sorted(gold.keys() | predicted.keys())
    ]


def confusion_matrix(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], types: Sequence[str]
) -> tuple[list[str], list[str], np.ndarray]:
    """Span-level type confusion: rows are gold types then "spurious", columns predicted types then "missed".

    Gold and predicted spans with the same boundaries count in (gold type, predicted type); a gold span
    nothing matches counts in (its type, "missed"), a predicted span nothing matches in ("spurious", its
    type). A boundary error thus counts in both, so row sums are gold supports and column sums prediction
    counts, as seqeval counts them. `types` fixes the order; types outside it are appended.
    """
    order = list(dict.fromkeys(types))
    pairs = [
        match
        for gold_tags, predicted_tags in zip(gold, predicted, strict=True)
        for match in match_spans(gold_tags, predicted_tags)
    ]
    for match in pairs:
        for kind in (match.gold, match.predicted):
            if kind is not None and kind not in order:
                order.append(kind)
    rows, columns = [*order, SPURIOUS], [*order, MISSED]
    counts = np.zeros((len(rows), len(columns)), dtype=np.int64)
    for match in pairs:
        row = rows.index(match.gold) if match.gold is not None else len(order)
        column = columns.index(match.predicted) if match.predicted is not None else len(order)
        counts[row, column] += 1
    return rows, columns, counts
