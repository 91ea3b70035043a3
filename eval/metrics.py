"""Span-level scores for one tagging layer (IOB2), computed with seqeval.

Two seqeval modes are reported side by side:

* default mode (conlleval-compatible): a stray `I-X` after `O` or after another
  type still opens a chunk. This is what `seqeval.metrics.f1_score` returns and
  what published AraBERT NER numbers use, so `micro_f1` is the headline figure.
* strict mode (`mode="strict", scheme=IOB2`): a chunk must start with `B-X`, so a
  prediction only scores if its tags are well-formed IOB2.

All scores are fractions in 0..1. Nothing here reimplements chunking: every
figure, including the event-trigger ones, comes from seqeval.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.metrics.v1 import precision_recall_fscore_support
from seqeval.scheme import IOB2, Entities

__all__ = ["score_layer", "trigger_scores", "format_table", "format_markdown"]

Tags = Sequence[Sequence[str]]

# Same tag shape as models/labels.py: `O`, or `B-`/`I-` followed by a type without spaces.
_TAG = re.compile(r"^(?:O|[BI]-\S+)$")
# Rows of seqeval's classification_report that are averages, not entity types.
_AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")
_DIGITS = 6


def _round(value: Any) -> float:
    # seqeval returns numpy scalars; json cannot serialise those.
    return round(float(value), _DIGITS)


def _check(gold: Tags, pred: Tags) -> tuple[list[list[str]], list[list[str]]]:
    """Validate the pair and return plain lists of lists.

    The harness promises every gold word a prediction, so any misalignment is a
    bug upstream and must fail loudly instead of being scored as misses.
    """
    if len(gold) == 0:
        raise ValueError("no sentences to score: gold is empty")
    if len(gold) != len(pred):
        raise ValueError(f"number of sentences differs: gold has {len(gold)}, predictions have {len(pred)}")
    gold_lists: list[list[str]] = []
    pred_lists: list[list[str]] = []
    for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(
                f"sentence {index}: gold has {len(gold_tags)} tags but predictions have {len(pred_tags)}"
            )
        for side, tags in (("gold", gold_tags), ("predicted", pred_tags)):
            for position, tag in enumerate(tags):
                # seqeval would only warn (default mode) or raise an obscure error (strict mode).
                if not isinstance(tag, str) or not _TAG.match(tag):
                    raise ValueError(
                        f"sentence {index}, word {position}: {side} tag {tag!r} is not O, B-TYPE or I-TYPE"
                    )
        # seqeval's default mode only recognises nested *lists* (not tuples) as sentences.
        gold_lists.append(list(gold_tags))
        pred_lists.append(list(pred_tags))
    return gold_lists, pred_lists


def _count_spans(sentences: list[list[str]], strict: bool) -> int:
    if strict:
        return sum(len(found) for found in Entities(sentences, IOB2).entities)
    return len(get_entities(sentences))


def _mode_scores(gold: list[list[str]], pred: list[list[str]], strict: bool) -> dict[str, Any]:
    """Micro P/R/F1, macro F1 and per-type rows for one seqeval mode."""
    n_gold = _count_spans(gold, strict)
    n_pred = _count_spans(pred, strict)
    if n_gold == 0 and n_pred == 0:
        # seqeval's report averages over an empty type list (numpy warns and gives NaN);
        # with nothing to find and nothing found there is simply nothing to score.
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0, "per_type": {},
                "n_gold": 0, "n_pred": 0}

    options: dict[str, Any] = {"mode": "strict", "scheme": IOB2} if strict else {}
    # zero_division=0: a type with no predictions (or no gold) scores 0 without a warning per call.
    report = classification_report(gold, pred, output_dict=True, zero_division=0, **options)
    per_type = {
        kind: {
            "precision": _round(row["precision"]),
            "recall": _round(row["recall"]),
            "f1": _round(row["f1-score"]),
            "support": int(row["support"]),
        }
        for kind, row in sorted(report.items())
        if kind not in _AVERAGE_ROWS
    }
    # The report's micro/macro rows are the same computation as f1_score(average=...),
    # read from one pass instead of three.
    micro, macro = report["micro avg"], report["macro avg"]
    return {
        "precision": _round(micro["precision"]),
        "recall": _round(micro["recall"]),
        "f1": _round(micro["f1-score"]),
        "macro_f1": _round(macro["f1-score"]),
        "per_type": per_type,
        "n_gold": n_gold,
        "n_pred": n_pred,
    }


def score_layer(gold: Tags, pred: Tags) -> dict[str, Any]:
    """Score one layer. `gold` and `pred` are lists of sentences of IOB2 tags, aligned word by word.

    Returns a JSON-serialisable dict; see the module docstring for the two modes.
    Macro F1 is seqeval's: the unweighted mean over every type seen in gold *or*
    predictions, so a type that is only ever hallucinated counts as an F1 of 0.
    Span counts are default-mode chunks (they match `per_type` supports);
    the `_strict` counts are the IOB2-valid chunks.
    """
    gold_lists, pred_lists = _check(gold, pred)
    default = _mode_scores(gold_lists, pred_lists, strict=False)
    strict = _mode_scores(gold_lists, pred_lists, strict=True)
    return {
        "micro_f1": default["f1"],
        "micro_precision": default["precision"],
        "micro_recall": default["recall"],
        "strict_micro_f1": strict["f1"],
        "strict_micro_precision": strict["precision"],
        "strict_micro_recall": strict["recall"],
        "macro_f1": default["macro_f1"],
        "per_type": default["per_type"],
        "per_type_strict": strict["per_type"],
        "n_sentences": len(gold_lists),
        "n_words": sum(len(tags) for tags in gold_lists),
        "n_gold_spans": default["n_gold"],
        "n_pred_spans": default["n_pred"],
        "n_gold_spans_strict": strict["n_gold"],
        "n_pred_spans_strict": strict["n_pred"],
    }


# ---------------------------------------------------------------- event triggers

def _map_types(sentences: list[list[str]], rename: Callable[[str], str]) -> list[list[str]]:
    """Rewrite the type of every B-/I- tag, keeping the prefix, so seqeval can score a coarser task."""
    return [[tag if tag == "O" else f"{tag[:2]}{rename(tag[2:])}" for tag in tags] for tags in sentences]


def _strict_prf(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, pred, average="micro", scheme=IOB2, zero_division=0
    )
    return {"precision": _round(precision), "recall": _round(recall), "f1": _round(f1)}


def trigger_scores(gold: Tags, pred: Tags) -> dict[str, dict[str, float]]:
    """Event-trigger figures in the usual ACE style, all strict IOB2 micro P/R/F1.

    * identification: boundaries right, type ignored (every type becomes `TRIGGER`);
    * classification: boundaries and full type right (`Conflict.Attack`);
    * classification_top_type: boundaries and the type up to its first dot right (`Conflict`).

    Because the types are mapped before chunking, `B-Attack I-Transport` reads as one
    two-word trigger for identification (and for the top type when both share it),
    while for classification it is a one-word `Attack` followed by an invalid `I-`.
    """
    gold_lists, pred_lists = _check(gold, pred)

    def one_type(_: str) -> str:
        return "TRIGGER"

    def top_type(kind: str) -> str:
        return kind.split(".", 1)[0]

    return {
        "identification": _strict_prf(_map_types(gold_lists, one_type), _map_types(pred_lists, one_type)),
        "classification": _strict_prf(gold_lists, pred_lists),
        "classification_top_type": _strict_prf(_map_types(gold_lists, top_type), _map_types(pred_lists, top_type)),
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
        rows.append((kind, _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]), strict_f1,
                     str(row["support"])))
    rows.append(("micro avg", _pct(scores["micro_precision"]), _pct(scores["micro_recall"]),
                 _pct(scores["micro_f1"]), _pct(scores["strict_micro_f1"]), str(scores["n_gold_spans"])))
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
    lines = [f"{heading} {name}", "", _summary(scores) + ".", "",
             "| " + " | ".join(_HEADER) + " |",
             "|---|" + "---:|" * (len(_HEADER) - 1)]
    for kind, *cells in _rows(scores):
        # A `|` in a type name would split the Markdown cell.
        lines.append("| " + " | ".join([kind.replace("|", "\\|"), *cells]) + " |")
    return "\n".join(lines) + "\n"
