"""PNG plots of an evaluation and of a training run: per-type F1, span confusion, training curves.

Figures are built with matplotlib's object API and rendered by its Agg backend (no pyplot, no display,
no global state), so plotting works on a headless machine and inside tests.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 120
TRAINING_CURVES = "training-curves.png"  # in the checkpoint folder, from ../log.csv
# Trainer log columns holding one layer's headline dev F1 per epoch (train/run.py dev_metrics): a tagging
# layer's micro_f1 (not its strict_micro_f1), the arguments' labelled_f1; eval_mean_f1 is their mean.
_DEV_F1 = re.compile(r"^eval_(.+)(?<!_strict)_(?:micro|labelled)_f1$")


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def plot_per_type_f1(scores: dict, title: str, path: Path) -> Path:
    """Horizontal bars of per-type F1 (default seqeval mode), most frequent type on top, support on each label."""
    per_type = sorted(scores["per_type"].items(), key=lambda item: (-item[1]["support"], item[0]))
    names = [f"{kind}  (n={row['support']})" for kind, row in per_type]
    values = [100 * row["f1"] for _, row in per_type]
    figure = Figure(figsize=(7, 1.4 + 0.3 * max(len(per_type), 1)))
    axes = figure.subplots()
    positions = np.arange(len(per_type))
    axes.barh(positions, values, color="#4c72b0")
    for position, value in zip(positions, values):
        axes.text(value + 1, position, f"{value:.1f}", va="center", fontsize=8)
    axes.axvline(
        100 * scores["micro_f1"], color="#c44e52", linestyle="--", label=f"micro F1 {100 * scores['micro_f1']:.1f}"
    )
    axes.axvline(
        100 * scores["macro_f1"], color="#55a868", linestyle=":", label=f"macro F1 {100 * scores['macro_f1']:.1f}"
    )
    axes.set_yticks(positions, names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 108)
    axes.set_xlabel("F1 (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def plot_confusion(rows: list[str], columns: list[str], counts: np.ndarray, title: str, path: Path) -> Path:
    """Counts in every cell, shaded by the share of their row, so rare types read as clearly as frequent ones."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    size = 1.6 + 0.55 * len(columns)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            if counts[row, column]:
                axes.text(
                    column,
                    row,
                    str(counts[row, column]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shares[row, column] > 0.6 else "black",
                )
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(rows)), rows, fontsize=8)
    axes.set_xlabel("predicted span")
    axes.set_ylabel("gold span")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the row")
    return _save(figure, path)


def read_log(log_csv: Path) -> list[dict[str, float]]:
    """The Trainer log rows of a run's log.csv, empty cells dropped, values as floats."""
    with Path(log_csv).open(encoding="utf-8", newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def plot_training_curves(log_csv: Path, path: Path, title: str = "training") -> Path | None:
    """Training loss per logging step and dev F1 per epoch and layer, against epochs; None if nothing was logged."""
    rows = read_log(log_csv)
    losses = [(row["epoch"], row["loss"]) for row in rows if "loss" in row and "epoch" in row]
    columns = {match.group(1): key for row in rows for key in row if (match := _DEV_F1.match(key))}  # layer -> column
    layers = sorted(columns)
    if not losses and not layers:
        return None
    figure = Figure(figsize=(10 if layers else 5.5, 3.8))
    panels = figure.subplots(1, 2 if layers else 1, squeeze=False)[0]
    loss_axes = panels[0]
    if losses:
        loss_axes.plot(*zip(*losses), color="#4c72b0", label="training loss")
    dev_losses = [(row["epoch"], row["eval_loss"]) for row in rows if "eval_loss" in row]
    if dev_losses:
        loss_axes.plot(*zip(*dev_losses), "o--", color="#dd8452", label="dev loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    loss_axes.set_yscale("log")
    loss_axes.set_title(f"{title}: loss", fontsize=10)
    loss_axes.legend(fontsize=8)
    if layers:
        f1_axes = panels[1]
        for layer in layers:
            points = [(row["epoch"], 100 * row[columns[layer]]) for row in rows if columns[layer] in row]
            f1_axes.plot(*zip(*points), "o-", label=f"{layer} dev F1")
        f1_axes.set_xlabel("epoch")
        f1_axes.set_ylabel("F1 (%)")
        f1_axes.set_title(f"{title}: dev F1 per epoch", fontsize=10)
        f1_axes.grid(alpha=0.3)
        f1_axes.legend(fontsize=8)
    return _save(figure, path)
