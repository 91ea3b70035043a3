"""The evaluate module eval/tagging_f1.py: seqeval's own numbers, and loadable with no network.

tests/test_metrics.py checks eval/metrics.py against hand-counted figures; here every expected figure
comes from calling seqeval directly, so the module can only pass by reproducing it exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score, sequence_labeling, v1
from seqeval.scheme import IOB2, Entities

from eval.metrics import METRIC_MODULE, score_layer, trigger_scores

PROJECT = Path(__file__).parents[1]

# Sentences where seqeval's two modes read the tags differently:
GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["O", "O", "O"],  # no gold span: whatever is predicted here is spurious
    ["I-ORG", "I-ORG", "O", "B-PER"],  # a stray I- at the sentence start: a chunk in default mode only
    ["B-PER", "I-PER", "O", "B-ORG", "I-ORG"],
    ["O", "B-LOC", "I-LOC", "O"],
]
PRED = [
    ["B-PER", "I-LOC", "O", "B-LOC"],  # the type changes inside a chunk
    ["O", "B-ORG", "O"],
    ["I-ORG", "I-ORG", "O", "B-PER"],
    ["B-PER", "I-PER", "O", "O", "I-ORG"],  # an I- after O
    ["O", "B-LOC", "I-LOC", "O"],
]
STRICT = {"mode": "strict", "scheme": IOB2}


@pytest.fixture(scope="module")
def scores() -> dict:
    return score_layer(GOLD, PRED)


def test_the_fixture_separates_the_two_modes(scores: dict):
    # Otherwise the comparisons below could not tell a mode mix-up from the right answer.
    assert scores["micro_f1"] != scores["strict_micro_f1"]
    assert scores["per_type"]["ORG"] != scores["per_type_strict"]["ORG"]


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_micro_scores_are_seqevals(scores: dict, mode: str):
    options, prefix = (STRICT, "strict_") if mode == "strict" else ({}, "")
    for name, seqeval_score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = round(float(seqeval_score(GOLD, PRED, zero_division=0, **options)), 6)
        assert scores[f"{prefix}micro_{name}"] == expected, name


def test_macro_f1_is_seqevals(scores: dict):
    assert scores["macro_f1"] == round(float(f1_score(GOLD, PRED, average="macro", zero_division=0)), 6)


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_per_type_rows_are_seqevals(scores: dict, mode: str):
    if mode == "strict":
        types = Entities(GOLD, IOB2).unique_tags | Entities(PRED, IOB2).unique_tags
        rows = v1.precision_recall_fscore_support(GOLD, PRED, average=None, zero_division=0, scheme=IOB2)
        per_type = scores["per_type_strict"]
    else:
        types = {kind for kind, _, _ in sequence_labeling.get_entities(GOLD) + sequence_labeling.get_entities(PRED)}
        rows = sequence_labeling.precision_recall_fscore_support(GOLD, PRED, average=None, zero_division=0)
        per_type = scores["per_type"]
    # seqeval returns one array per figure, its entries in the sorted order of the types
    expected = {
        kind: {
            "precision": round(float(precision), 6),
            "recall": round(float(recall), 6),
            "f1": round(float(f1), 6),
            "support": int(support),
        }
        for kind, precision, recall, f1, support in zip(sorted(types), *rows)
    }
    assert per_type == expected


def test_span_and_word_counts(scores: dict):
    # counted by hand: gold PER, LOC / - / ORG (stray I-), PER / PER, ORG / LOC
    assert (scores["n_gold_spans"], scores["n_gold_spans_strict"]) == (7, 6)
    # predicted PER, LOC (type change), LOC / ORG / ORG (stray I-), PER / PER, ORG (after O) / LOC
    assert (scores["n_pred_spans"], scores["n_pred_spans_strict"]) == (9, 6)
    assert (scores["n_sentences"], scores["n_words"]) == (5, 20)


def test_trigger_views_are_seqevals_strict_micro_on_mapped_types():
    gold = [["B-Life.Die", "I-Life.Die", "O", "B-Conflict.Attack"], ["O", "O"], ["I-Movement.Transport", "O"]]
    pred = [
        ["B-Life.Die", "I-Life.Injure", "O", "B-Conflict.Demonstrate"],
        ["B-Justice.Arrest", "O"],
        ["I-Movement.Transport", "O"],
    ]

    def mapped(sentences, rename):
        return [[tag if tag == "O" else tag[:2] + rename(tag[2:]) for tag in tags] for tags in sentences]

    views = {
        "identification": lambda kind: "TRIGGER",
        "classification": lambda kind: kind,
        "classification_top_type": lambda kind: kind.split(".")[0],
    }
    scores = trigger_scores(gold, pred)
    for view, rename in views.items():
        precision, recall, f1, _ = v1.precision_recall_fscore_support(
            mapped(gold, rename), mapped(pred, rename), average="micro", zero_division=0, scheme=IOB2
        )
        assert scores[view] == {
            "precision": round(float(precision), 6),
            "recall": round(float(recall), 6),
            "f1": round(float(f1), 6),
        }, view


def test_evaluate_loads_the_module_from_its_file_with_no_network(tmp_path: Path, scores: dict):
    # A fresh modules cache, so the module really is read from the file; every connection refused, so
    # any attempt to reach the Hub fails the load instead of quietly succeeding on a connected machine.
    script = f"""
import json, socket

def refuse(*args, **kwargs):
    raise OSError("no network in this test")

socket.socket.connect = refuse
socket.create_connection = refuse
import evaluate

metric = evaluate.load({str(METRIC_MODULE)!r})
print(json.dumps(metric.compute(references={GOLD!r}, predictions={PRED!r})))
"""
    environment = {
        **os.environ,
        "HF_EVALUATE_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_METRICS_CACHE": str(tmp_path / "metrics"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == scores
    assert list((tmp_path / "modules").rglob("tagging_f1.py")), "evaluate imported its own copy of the module"


def test_checks_apply_to_sentences_added_one_by_one():
    import evaluate

    metric = evaluate.load(str(METRIC_MODULE), keep_in_memory=True)
    metric.add(reference=["B-PER", "O"], prediction=["B-PER", "O"])
    with pytest.raises(ValueError, match=r"sentence 1, word 0: predicted tag 5 is not O"):
        metric.add(reference=["O"], prediction=[5])
    with pytest.raises(ValueError, match=r"sentence 1: gold has 1 tags but predictions have 2"):
        metric.add_batch(references=[["O"]], predictions=[["O", "O"]])
    assert metric.compute()["n_sentences"] == 1
