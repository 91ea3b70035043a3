"""Evaluate a checkpoint on a corpus split: tag every sentence's words, score each layer with seqeval."""
from __future__ import annotations

import json
import time
from pathlib import Path

from eval.html import write_comparison
from eval.metrics import format_markdown, format_table, score_layer, trigger_scores
from eval.plots import plot_confusion, plot_per_type_f1
from eval.spans import confusion_matrix
from models.labels import types_of
from models.tagger import Tagger, WordTags
from train.corpora import Sentence

ENTITY_LAYER = "entities"
EVENT_LAYER = "events"


def check_labels(tagger: Tagger, sentences: list[Sentence], data: str) -> None:
    """A gold label the checkpoint cannot predict would silently count as a miss: refuse it instead."""
    for layer, labels in tagger.layers.items():
        gold = {tag for sentence in sentences for tag in sentence.tags.get(layer, ())}
        unknown = sorted(gold - set(labels))
        if unknown:
            raise ValueError(f"{data}: layer {layer!r} has labels the checkpoint does not know: {unknown}; "
                             f"the checkpoint knows {labels}")


def layer_pairs(sentences: list[Sentence], predicted: list[WordTags], layer: str) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tags of `layer` for the sentences that annotate it."""
    pairs = [(list(s.tags[layer]), p.tags[layer]) for s, p in zip(sentences, predicted) if layer in s.tags]
    return [gold for gold, _ in pairs], [pred for _, pred in pairs]


def evaluate(tagger: Tagger, sentences: list[Sentence], data: str) -> dict:
    """Scores per annotated layer; every gold word must have received exactly one prediction."""
    return evaluate_with_predictions(tagger, sentences, data)[0]


def evaluate_with_predictions(tagger: Tagger, sentences: list[Sentence], data: str) -> tuple[dict, list[WordTags]]:
    """The report of `evaluate` and the word predictions it scored (for plots and the HTML view)."""
    check_labels(tagger, sentences, data)
    started = time.perf_counter()
    predicted = tagger.predict_words([list(sentence.words) for sentence in sentences],
                                     [sentence.document for sentence in sentences])
    seconds = time.perf_counter() - started
    report = {"data": data, "decoding": tagger.decoding, "precision": tagger.precision, "n_sentences": len(sentences),
              "seconds": round(seconds, 2), "layers": {}}
    for layer in tagger.layers:
        gold, pred = layer_pairs(sentences, predicted, layer)
        if not gold:
            continue
        for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
            assert len(gold_tags) == len(pred_tags), \
                f"{data}: sentence {index} has {len(gold_tags)} words but {len(pred_tags)} predictions"
        scores = score_layer(gold, pred)
        if layer == EVENT_LAYER:
            scores["triggers"] = trigger_scores(gold, pred)
        report["layers"][layer] = scores
    if not report["layers"]:
        raise ValueError(f"{data} annotates none of the checkpoint's layers {list(tagger.layers)}")
    return report, predicted


def report_stem(report: dict) -> str:
    return "eval-" + report["data"].replace(":", "-")


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """eval-<corpus>-<split>.json and .md in out_dir."""
    stem = report_stem(report)
    json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(render(report, format_markdown) + "\n", encoding="utf-8")
    return json_path, markdown_path


def write_views(report: dict, sentences: list[Sentence], predicted: list[WordTags], layers: dict[str, list[str]],
                out_dir: Path) -> list[Path]:
    """Beside the JSON/Markdown: per-type F1 bars per layer (.png), the entity span confusion matrix (.png)
    and the gold-versus-predicted page (.html)."""
    stem = report_stem(report)
    written = [plot_per_type_f1(scores, f"{report['data']} {layer}: F1 per type (support n)",
                                out_dir / f"{stem}-f1-{layer}.png")
               for layer, scores in report["layers"].items()]
    if ENTITY_LAYER in report["layers"]:
        gold, pred = layer_pairs(sentences, predicted, ENTITY_LAYER)
        rows, columns, counts = confusion_matrix(gold, pred, types_of(layers[ENTITY_LAYER]))
        written.append(plot_confusion(rows, columns, counts, f"{report['data']} entities: span types",
                                      out_dir / f"{stem}-confusion-{ENTITY_LAYER}.png"))
    written.append(write_comparison(report, sentences, predicted, layers, out_dir / f"{stem}.html"))
    return written


def render(report: dict, formatter=format_table) -> str:
    parts = []
    bullet = "" if formatter is format_table else "- "  # one Markdown list item per line, not one paragraph
    # scores away from fp32 say so in their title (eval --precision)
    precision = "" if report.get("precision", "fp32") == "fp32" else f" ({report['precision']})"
    for layer, scores in report["layers"].items():
        parts.append(formatter(f"{report['data']} {layer}{precision}", scores))
        triggers = scores.get("triggers")
        if triggers:
            parts.append("\n".join(f"{bullet}trigger {name}: F1 {100 * value['f1']:.2f} (P {100 * value['precision']:.2f}, "
                                   f"R {100 * value['recall']:.2f})" for name, value in triggers.items()))
    return "\n\n".join(parts)
