"""The tagging metric as the project uses it: one layer's scores, the event-trigger views, their reports.

Every figure comes from one implementation, the `evaluate` metric in eval/tagging_f1.py (its docstring
explains the two seqeval modes); training's dev F1, `python -m eval` and the benchmarks all score through it.
All scores are fractions in 0..1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["score_layer", "trigger_scores", "format_table", "format_markdown"]

Tags = Sequence[Sequence[str]]
METRIC_MODULE = Path(__file__).with_name("tagging_f1.py")
_DIGITS = 6


def _round(value: Any) -> float:
    # seqeval returns numpy scalars; json cannot serialise those.
    return round(float(value), _DIGITS)


@functools.cache
def _tagging_metric():
    """The metric module (eval/tagging_f1.py), loaded once per process from its file: nothing is fetched."""
    # evaluate imports datasets, seconds of start-up: paid by the first score, not by importing a CLI
    import evaluate

    # keep_in_memory: nothing goes to evaluate's cache files, so processes that score at the same time
    # (accelerate's ranks, parallel test runs) share no file and no lock
    return evaluate.load(str(METRIC_MODULE), keep_in_memory=True)


def score_layer(gold: Tags, pred: Tags) -> dict[str, Any]:
    """Score one layer. `gold` and `pred` are lists of sentences of IOB2 tags, aligned word by word.

    Returns a JSON-serialisable dict: `micro_f1`, `micro_precision`, `micro_recall` (default mode),
    `strict_micro_*` (strict IOB2), `macro_f1`, `per_type` and `per_type_strict`, `n_sentences`, `n_words` and
    the span counts. Macro F1 is seqeval's: the unweighted mean over every type seen in gold *or*
    predictions, so a type that is only ever hallucinated counts as an F1 of 0. Span counts are default-mode
    chunks (they match `per_type` supports); the `_strict` counts are the IOB2-valid chunks.
    A misaligned pair or a malformed tag raises ValueError naming the sentence (and word).
    """
    return _tagging_metric().compute(references=gold, predictions=pred)


# ---------------------------------------------------------------- event triggers


def _map_types(sentences: Tags, rename: Callable[[str], str]) -> list[list[str]]:
    """Rewrite the type of every B-/I- tag, keeping the prefix, so the metric scores a coarser task."""
    return [[tag if tag == "O" else f"{tag[:2]}{rename(tag[2:])}" for tag in tags] for tags in sentences]


def _strict_micro(gold: Tags, pred: Tags) -> dict[str, float]:
    scores = score_layer(gold, pred)
    return {
        "precision": scores["strict_micro_precision"],
        "recall": scores["strict_micro_recall"],
        "f1": scores["strict_micro_f1"],
    }


def trigger_scores(gold: Tags, pred: Tags) -> dict[str, dict[str, float]]:
    """Event-trigger figures in the usual ACE style, all strict IOB2 micro P/R/F1.

    * identification: boundaries right, type ignored (every type becomes `TRIGGER`);
    * classification: boundaries and full type right (`Conflict.Attack`);
    * classification_top_type: boundaries and the type up to its first dot right (`Conflict`).

    Because the types are mapped before chunking, `B-Attack I-Transport` reads as one
    two-word trigger for identification (and for the top type when both share it),
    while for classification it is a one-word `Attack` followed by an invalid `I-`.
    """
    # first, on the tags as given: a malformed tag is reported as written, not as mapped
    classification = _strict_micro(gold, pred)

    def one_type(_: str) -> str:
        return "TRIGGER"

    def top_type(kind: str) -> str:
        return kind.split(".", 1)[0]

    return {
        "identification": _strict_micro(_map_types(gold, one_type), _map_types(pred, one_type)),
        "classification": classification,
        "classification_top_type": _strict_micro(_map_types(gold, top_type), _map_types(pred, top_type)),
    }


# ---------------------------------------------------------------- reports


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _summary(scores: dict[str, Any]) -> str:
    return (
        f"micro F1 {_pct(scores['micro_f1'])} (strict {_pct(scores['strict_micro_f1'])}), "
        f"macro F1 {_pct(scores['macro_f1'])}; "
        f"P {_pct(scores['micro_precision'])}, R {_pct(scores['micro_recall'])}; "
        f"{scores['n_sentences']} sentences, {scores['n_words']} words, "
        f"{scores['n_gold_spans']} gold / {scores['n_pred_spans']} predicted spans"
    )


def _rows(scores: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(type, P, R, F1, strict F1, support) per type, then the micro row; percentages as text."""
    strict = scores.get("per_type_strict", {})
    rows = []
    for kind, row in scores["per_type"].items():
        strict_f1 = _pct(strict[kind]["f1"]) if kind in strict else "-"
        rows.append(
            (kind, _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]), strict_f1, str(row["support"]))
        )
    rows.append(
        (
            "micro avg",
            _pct(scores["micro_precision"]),
            _pct(scores["micro_recall"]),
            _pct(scores["micro_f1"]),
            _pct(scores["strict_micro_f1"]),
            str(scores["n_gold_spans"]),
        )
    )
    return rows


_HEADER = ("type", "P", "R", "F1", "F1 strict", "support")


def format_table(name: str, scores: dict[str, Any]) -> str:
    """Plain-text table for the terminal: a summary line, then per-type P/R/F1 (percent) and support."""
    rows = _rows(scores)
    width = max(len(_HEADER[0]), *(len(row[0]) for row in rows))
    lines = [f"{name}: {_summary(scores)}"]
    lines.append(f"  {_HEADER[0]:<{width}}" + "".join(f"  {title:>9}" for title in _HEADER[1:]))
    for row in rows:
        lines.append(f"  {row[0]:<{width}}" + "".join(f"  {cell:>9}" for cell in row[1:]))
    return "\n".join(lines)


def format_markdown(name: str, scores: dict[str, Any], heading: str = "##") -> str:
    """The same report as a Markdown section: `## name` (or another `heading`), a summary line, a per-type table."""
    lines = [
        f"{heading} {name}",
        "",
        _summary(scores) + ".",
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|---|" + "---:|" * (len(_HEADER) - 1),
    ]
    for kind, *cells in _rows(scores):
        # A `|` in a type name would split the Markdown cell.
        lines.append("| " + " | ".join([kind.replace("|", "\\|"), *cells]) + " |")
    return "\n".join(lines) + "\n"
