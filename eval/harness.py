"""Evaluate a checkpoint on a corpus split: tag every sentence's words, score each layer with seqeval."""

from __future__ import annotations

import json
import time
from pathlib import Path

from corpora.reader import Sentence
from eval.arguments import argument_scores, event_accuracy, format_argument_scores, rule_arguments
from eval.html import write_comparison
from eval.metrics import format_markdown, format_table, score_layer, trigger_scores
from eval.plots import plot_confusion, plot_per_type_f1
from eval.spans import confusion_matrix
from models.arguments import ENTITY_LAYER, TRIGGER_LAYER
from models.errors import UserError
from models.labels import chunks, types_of
from models.tagger import Tagger, WordTags


class DataMismatch(UserError, ValueError):
    """Evaluation data the checkpoint cannot score: labels it does not know, or none of its layers."""


def check_labels(tagger: Tagger, sentences: list[Sentence], data: str) -> None:
    """A gold label the checkpoint cannot predict would silently count as a miss: refuse it instead."""
    for layer, labels in tagger.layers.items():
        gold = {tag for sentence in sentences for tag in sentence.tags.get(layer, ())}
        unknown = sorted(gold - set(labels))
        if unknown:
            raise DataMismatch(
                f"{data}: layer {layer!r} has labels the checkpoint does not know: {unknown}; "
                f"the checkpoint knows {list(labels)}"
            )


def layer_pairs(
    sentences: list[Sentence], predicted: list[WordTags], layer: str
) -> tuple[list[list[str]], list[list[str]]]:
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
    predicted = tagger.predict_words(
        [list(sentence.words) for sentence in sentences], [sentence.document for sentence in sentences]
    )
    seconds = time.perf_counter() - started
    report = {
        "data": data,
        "decoding": tagger.decoding,
        "precision": tagger.precision,
        "n_sentences": len(sentences),
        "seconds": round(seconds, 2),
        "layers": {},
    }
    for layer in tagger.layers:
        gold, pred = layer_pairs(sentences, predicted, layer)
        if not gold:
            continue
        for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
            assert len(gold_tags) == len(pred_tags), (
                f"{data}: sentence {index} has {len(gold_tags)} words but {len(pred_tags)} predictions"
            )
        scores = score_layer(gold, pred)
        if layer == TRIGGER_LAYER:
            scores["triggers"] = trigger_scores(gold, pred)
        report["layers"][layer] = scores
    if not report["layers"]:
        raise DataMismatch(f"{data} annotates none of the checkpoint's layers {list(tagger.layers)}")
    if tagger.roles and any(sentence.arguments is not None for sentence in sentences):
        report["arguments"] = argument_report(tagger, sentences, predicted, report["layers"])
    return report, predicted


def argument_report(tagger: Tagger, sentences: list[Sentence], predicted: list[WordTags], layers: dict) -> dict:
    """Argument scores on the sentences that annotate arguments: end to end (predicted triggers and entities),
    with the gold ones given (the linking alone), the rule baseline both ways, and the events a reader
    would find fully right. End to end is bounded by the two layers, so their F1s' product stands beside it."""
    annotated = [index for index, sentence in enumerate(sentences) if sentence.arguments is not None]

    def spans(tags: dict, layer: str) -> list[tuple[int, int, str]]:
        return chunks(list(tags[layer])) if layer in tags else []

    gold_mentions = [
        {layer: spans(sentence.tags, layer) for layer in (TRIGGER_LAYER, ENTITY_LAYER)} for sentence in sentences
    ]
    predicted_mentions = [
        {layer: spans(tags.tags, layer) for layer in (TRIGGER_LAYER, ENTITY_LAYER)} for tags in predicted
    ]
    linked = tagger.predict_words(
        [list(sentence.words) for sentence in sentences],
        [sentence.document for sentence in sentences],
        mentions=gold_mentions,
    )
    gold = [sentences[index].arguments for index in annotated]

    def baseline(mentions: list[dict]) -> dict:
        return argument_scores(
            gold,
            [
                rule_arguments(
                    list(sentences[index].words), mentions[index][TRIGGER_LAYER], mentions[index][ENTITY_LAYER]
                )
                for index in annotated
            ],
        )

    end_to_end = [predicted[index].arguments for index in annotated]
    events = [gold_mentions[index][TRIGGER_LAYER] for index in annotated]
    return {
        "n_sentences": len(annotated),
        "n_unannotated_sentences": len(sentences) - len(annotated),
        "gold_mentions": argument_scores(gold, [linked[index].arguments for index in annotated]),
        "end_to_end": argument_scores(gold, end_to_end),
        "layers_f1_product": round(layers[ENTITY_LAYER]["micro_f1"] * layers[TRIGGER_LAYER]["micro_f1"], 6)
        if {ENTITY_LAYER, TRIGGER_LAYER} <= layers.keys()
        else None,
        "events_fully_right": {
            "gold_mentions": event_accuracy(events, events, gold, [linked[index].arguments for index in annotated]),
            "end_to_end": event_accuracy(
                events, [predicted_mentions[index][TRIGGER_LAYER] for index in annotated], gold, end_to_end
            ),
        },
        "rule_baseline": {"gold_mentions": baseline(gold_mentions), "end_to_end": baseline(predicted_mentions)},
    }


def report_stem(report: dict) -> str:
    return "eval-" + report["data"].replace(":", "-")


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """eval-<corpus>-<split>.json and .md in out_dir."""
    stem = report_stem(report)
    json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(render(report, format_markdown) + "\n", encoding="utf-8")
    return json_path, markdown_path


def write_views(
    report: dict, sentences: list[Sentence], predicted: list[WordTags], layers: dict[str, list[str]], out_dir: Path
) -> list[Path]:
    """Beside the JSON/Markdown: per-type F1 bars per layer (.png), the entity span confusion matrix (.png)
    and the gold-versus-predicted page (.html)."""
    stem = report_stem(report)
    written = [
        plot_per_type_f1(
            scores, f"{report['data']} {layer}: F1 per type (support n)", out_dir / f"{stem}-f1-{layer}.png"
        )
        for layer, scores in report["layers"].items()
    ]
    if ENTITY_LAYER in report["layers"]:
        gold, pred = layer_pairs(sentences, predicted, ENTITY_LAYER)
        rows, columns, counts = confusion_matrix(gold, pred, types_of(layers[ENTITY_LAYER]))
        written.append(
            plot_confusion(
                rows,
                columns,
                counts,
                f"{report['data']} entities: span types",
                out_dir / f"{stem}-confusion-{ENTITY_LAYER}.png",
            )
        )
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
            parts.append(
                "\n".join(
                    f"{bullet}trigger {name}: F1 {100 * value['f1']:.2f} (P {100 * value['precision']:.2f}, "
                    f"R {100 * value['recall']:.2f})"
                    for name, value in triggers.items()
                )
            )
    arguments = report.get("arguments")
    if arguments:
        markdown = formatter is not format_table
        for view, words in (
            ("gold_mentions", "gold triggers and entities given"),
            ("end_to_end", "predicted triggers and entities"),
        ):
            parts.append(
                format_argument_scores(f"{report['data']} arguments, {words}{precision}", arguments[view], markdown)
            )
            right = arguments["events_fully_right"][view]
            baseline = arguments["rule_baseline"][view]["labelled"]["f1"]
            parts.append(
                f"{bullet}events fully right (subtype and every argument): {100 * right['accuracy']:.2f}% of "
                f"{right['events']}\n{bullet}rule baseline, same view: labelled F1 {100 * baseline:.2f}"
            )
        if arguments["layers_f1_product"] is not None:
            parts.append(
                f"{bullet}end to end is bounded by the layers: entity F1 x event F1 = "
                f"{100 * arguments['layers_f1_product']:.2f}"
            )
    return "\n\n".join(parts)
