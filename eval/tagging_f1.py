"""Span-level scores of one IOB2 tagging layer, as an `evaluate` metric: the project's only tagging metric.

    metric = evaluate.load("eval/tagging_f1.py")  # a local file: nothing is fetched
    metric.compute(references=gold_sentences, predictions=predicted_sentences)

Two seqeval modes are reported side by side:

* default mode (conlleval-compatible): a stray `I-X` after `O` or after another
  type still opens a chunk. This is what `seqeval.metrics.f1_score` returns and
  what published AraBERT NER numbers use, so `micro_f1` is the headline figure.
* strict mode (`mode="strict", scheme=IOB2`): a chunk must start with `B-X`, so a
  prediction only scores if its tags are well-formed IOB2.

All scores are fractions in 0..1, rounded to 6 digits; nothing here reimplements chunking, every figure
comes from seqeval. eval/metrics.py is the project's way in (`score_layer`, `trigger_scores`).
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from eval.metrics import _round
from models.labels import TagError, split_tag

_DESCRIPTION = (
    "seqeval span scores of one IOB2 tagging layer: micro precision, recall and F1 in default "
    "(conlleval) and strict IOB2 mode, macro F1, per-type rows in both modes, span and word counts."
)
_INPUTS = """
Args:
    references: gold sentences, each a list of tags (`O`, `B-TYPE` or `I-TYPE`).
    predictions: predicted sentences, aligned word by word with the references.
Returns:
    micro_f1, micro_precision, micro_recall: default mode;
    strict_micro_f1, strict_micro_precision, strict_micro_recall: strict IOB2 mode;
    macro_f1: default mode, the unweighted mean over every type seen in gold *or* predictions;
    per_type, per_type_strict: {type: {precision, recall, f1, support}} in each mode;
    n_sentences, n_words; n_gold_spans, n_pred_spans (default-mode chunks, the per_type supports) and
    n_gold_spans_strict, n_pred_spans_strict (the IOB2-valid chunks).
"""
# Rows of seqeval's classification_report that are averages, not entity types.
_AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")


def _check(references: Any, predictions: Any, first: int) -> None:
    """Every gold sentence needs a predicted one of the same length, every tag the shape O, B-TYPE or I-TYPE.

    The harness promises every gold word a prediction, so any misalignment is a bug upstream and must
    fail loudly instead of being scored as misses. `first` numbers the sentences across batches.
    """
    if references is None or predictions is None:
        raise ValueError("both references (gold) and predictions are needed")
    if len(references) != len(predictions):
        raise ValueError(
            f"number of sentences differs: gold has {len(references)}, predictions have {len(predictions)}"
        )
    for index, (gold_tags, pred_tags) in enumerate(zip(references, predictions), start=first):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {index}: gold has {len(gold_tags)} tags but predictions have {len(pred_tags)}")
        for side, tags in (("gold", gold_tags), ("predicted", pred_tags)):
            for position, tag in enumerate(tags):
                # seqeval would only warn (default mode) or raise an obscure error (strict mode).
                try:
                    split_tag(tag)
                except (TagError, TypeError):  # TypeError: not a string at all
                    raise ValueError(
                        f"sentence {index}, word {position}: {side} tag {tag!r} is not O, B-TYPE or I-TYPE"
                    ) from None


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
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0, "per_type": {}, "n_gold": 0, "n_pred": 0}

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


class TaggingF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        sentences = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": sentences, "references": sentences}),
            codebase_urls=["https://github.com/chakki-works/seqeval"],
        )

    # The sentences are checked as the caller gave them: evaluate's table would store a number as text.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Checks a batch of sentences and stores it for `compute`."""
        _check(references, predictions, first=len(self))
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Checks one sentence and stores it for `compute`."""
        return self.add_batch(predictions=[prediction], references=[reference], **kwargs)

    def _compute(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
        if not references:
            raise ValueError("no sentences to score: gold is empty")
        default = _mode_scores(references, predictions, strict=False)
        strict = _mode_scores(references, predictions, strict=True)
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
            "n_sentences": len(references),
            "n_words": sum(len(tags) for tags in references),
            "n_gold_spans": default["n_gold"],
            "n_pred_spans": default["n_pred"],
            "n_gold_spans_strict": strict["n_gold"],
            "n_pred_spans_strict": strict["n_pred"],
        }
