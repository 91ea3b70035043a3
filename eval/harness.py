"""Evaluate a checkpoint on a corpus split: tag every sentence's words, score each layer with seqeval."""
from __future__ import annotations

import json
import time
from pathlib import Path

from eval.metrics import format_markdown, format_table, score_layer, trigger_scores
from models.tagger import Tagger
from train.corpora import Sentence

EVENT_LAYER = "events"


def check_labels(tagger: Tagger, sentences: list[Sentence], data: str) -> None:
    """A gold label the checkpoint cannot predict would silently count as a miss: refuse it instead."""
    for layer, labels in tagger.layers.items():
        gold = {tag for sentence in sentences for tag in sentence.tags.get(layer, ())}
        unknown = sorted(gold - set(labels))
        if unknown:
            raise ValueError(f"{data}: layer {layer!r} has labels the checkpoint does not know: {unknown}; "
                             f"the checkpoint knows {labels}")


def evaluate(tagger: Tagger, sentences: list[Sentence], data: str) -> dict:
    """Scores per annotated layer; every gold word must have received exactly one prediction."""
    check_labels(tagger, sentences, data)
    started = time.perf_counter()
    predicted = tagger.predict_words([list(sentence.words) for sentence in sentences])
    seconds = time.perf_counter() - started
    report = {"data": data, "decoding": tagger.decoding, "n_sentences": len(sentences), "seconds": round(seconds, 2),
              "layers": {}}
    for layer in tagger.layers:
        pairs = [(list(s.tags[layer]), p.tags[layer]) for s, p in zip(sentences, predicted) if layer in s.tags]
        if not pairs:
            continue
        for index, (gold, pred) in enumerate(pairs):
            assert len(gold) == len(pred), f"{data}: sentence {index} has {len(gold)} words but {len(pred)} predictions"
        gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
        scores = score_layer(gold, pred)
        if layer == EVENT_LAYER:
            scores["triggers"] = trigger_scores(gold, pred)
        report["layers"][layer] = scores
    if not report["layers"]:
        raise ValueError(f"{data} annotates none of the checkpoint's layers {list(tagger.layers)}")
    return report


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """eval-<corpus>-<split>.json and .md in out_dir."""
    stem = "eval-" + report["data"].replace(":", "-")
    json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(render(report, format_markdown) + "\n", encoding="utf-8")
    return json_path, markdown_path


def render(report: dict, formatter=format_table) -> str:
    parts = []
    for layer, scores in report["layers"].items():
        parts.append(formatter(f"{report['data']} {layer}", scores))
        triggers = scores.get("triggers")
        if triggers:
            parts.append("\n".join(f"trigger {name}: F1 {100 * value['f1']:.2f} (P {100 * value['precision']:.2f}, "
                                   f"R {100 * value['recall']:.2f})" for name, value in triggers.items()))
    return "\n\n".join(parts)
