"""How F1 grows with annotated text: the offline default trained on slices of ANERcorp-Events train, and with
AQMAR-Events added, at the optimizer steps of the full run (and the mix once more at its own epochs).

    python -m bench.learning_curve [--seeds 42 7] [--rows full half ...]

Each row is a real training run (about 20 min on 2 CPU cores): a benchmark, never a test. Runs land in
runs/bench/learning-curve/<row>-s<seed>/; a finished one is reused, so an interrupted benchmark picks up where
it stopped, and the table covers every finished run of the chosen rows, whichever invocation trained it.
Every checkpoint is scored by `python -m eval` on ANERcorp-Events test (entities, events, and the argument
linking with gold mentions when the config trains it) and on AQMAR-Events test (events, out of domain). The
table and the plot of F1 against training tokens go beside the runs:
runs/bench/learning-curve/learning-curve.{md,json,png}.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import OUT, ROOT, command_line, markdown_table, write_result

CONFIG = ROOT / "configs" / "e5-small-offline.yaml"
RUNS = OUT / "learning-curve"
NEWS = "anercorp-events"
SCORED = ("entities", "events", "wiki_events", "arguments")  # what scores() gives, in the table's order
WIKI = "aqmar-events"
TESTS = (f"{NEWS}:test", f"{WIKI}:test")


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    train: tuple[str, ...]
    equal_steps: bool  # True: the steps of the full run; False: the config's epochs over this row's data


ROWS = (
    Row("quarter", "25% of ANERcorp-Events train", (f"{NEWS}:train[:25%]",), True),
    Row("half", "50% of ANERcorp-Events train", (f"{NEWS}:train[:50%]",), True),
    Row("full", "100% of ANERcorp-Events train (the default)", (f"{NEWS}:train",), False),
    Row("mix", "ANERcorp-Events + AQMAR-Events train, equal steps", (f"{NEWS}:train", f"{WIKI}:train"), True),
    Row(
        "mix-scaled",
        "ANERcorp-Events + AQMAR-Events train, steps scaled to the data",
        (f"{NEWS}:train", f"{WIKI}:train"),
        False,
    ),
)
FULL = "full"


def train_tokens(train: tuple[str, ...]) -> tuple[int, int]:
    """(words, event triggers) of a row's training text."""
    from corpora.reader import data_root, load_split
    from models.labels import chunks

    sentences = [sentence for name in train for sentence in load_split(name, data_root())]
    triggers = sum(len(chunks(list(sentence.tags["events"]))) for sentence in sentences if "events" in sentence.tags)
    return sum(len(sentence.words) for sentence in sentences), triggers


def trained_steps(run: Path) -> int:
    with (run / "log.csv").open(encoding="utf-8") as handle:
        return max(int(row["step"]) for row in csv.DictReader(handle))


def train(
    row: Row, seed: int, steps: int | None, config: Path, extra: list[str], runs: Path
) -> tuple[Path, float | None]:
    """The row's run folder and its wall-clock minutes (None when a finished run was reused)."""
    name = f"{row.name}-s{seed}"
    run = runs / name
    if (run / "model" / "tagger.json").is_file():
        print(f"  {name}: reusing {run}", file=sys.stderr, flush=True)
        return run, None
    overrides = [f"output_dir={runs}", f"name={name}", f"seed={seed}", f"data.train={json.dumps(list(row.train))}"]
    if steps is not None:
        overrides.append(f"training.max_steps={steps}")
    command = [sys.executable, "-m", "train", "--config", str(config), "--overwrite", *overrides, *extra]
    print(f"  training {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return run, (time.perf_counter() - started) / 60


def scores(run: Path) -> dict[str, float]:
    """F1 (%) of the checkpoint on both test splits, as `python -m eval` reports them; the arguments' is their
    labelled F1 with gold mentions (the linking alone)."""
    reports = run / "eval"
    expected = [reports / f"eval-{test.replace(':', '-')}.json" for test in TESTS]
    if not all(path.is_file() for path in expected):
        data = [argument for test in TESTS for argument in ("--data", test)]
        subprocess.run(
            [sys.executable, "-m", "eval", "--checkpoint", str(run / "model"), *data, "--out", str(reports)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    news, wiki = (json.loads(path.read_text(encoding="utf-8")) for path in expected)
    linking = news.get("arguments")  # absent when the config trains no argument head
    return {
        "entities": 100 * news["layers"]["entities"]["micro_f1"],
        "events": 100 * news["layers"]["events"]["micro_f1"],
        "wiki_events": 100 * wiki["layers"]["events"]["micro_f1"],
        "arguments": 100 * linking["gold_mentions"]["labelled"]["f1"] if linking else None,
    }


def mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f}" if values else ""


def row_train(result: dict) -> tuple[str, ...]:
    return next(row.train for row in ROWS if row.name == result["row"])


def plot(results: list[dict], path: Path) -> None:
    """F1 against training tokens: per metric, a line through the rows' means (solid: equal steps, dashed: the
    mix at its own epochs, both from the full row), and each seed as a faint dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, label, marker, colour in (
        ("entities", "entities, ANERcorp-Events test", "o", "tab:blue"),
        ("events", "events, ANERcorp-Events test", "s", "tab:green"),
        ("wiki_events", "events, AQMAR-Events test", "^", "tab:purple"),
        ("arguments", "arguments, gold mentions, ANERcorp-Events test", "D", "tab:red"),
    ):
        if any(result[key] is None for result in results):
            continue
        # only the news text has arguments: the mix rows add none, so they stay off the arguments' line
        shown = [r for r in results if key != "arguments" or all(name.startswith(NEWS) for name in row_train(r))]
        axis.scatter(
            [result["tokens"] for result in shown], [result[key] for result in shown], color=colour, alpha=0.3, s=14
        )
        for equal_steps, style in ((True, "-"), (False, "--")):
            rows = {
                result["row"]: result["tokens"]
                for result in shown
                if result["equal_steps"] == equal_steps or result["row"] == FULL
            }
            if len(rows) < 2 and not equal_steps:
                continue
            points = sorted(
                (tokens, statistics.mean(result[key] for result in shown if result["row"] == row))
                for row, tokens in rows.items()
            )
            axis.plot(
                *zip(*points),
                style,
                marker=marker,
                color=colour,
                label=f"{label}{'' if equal_steps else ', mix at its own epochs'}",
            )
    ticks = sorted({result["tokens"] for result in results})
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(FixedLocator(ticks))
    axis.xaxis.set_minor_locator(NullLocator())
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1000:.0f}k"))
    axis.set_xlabel("annotated training tokens (log scale)")
    axis.set_ylabel("micro F1 (%); line: mean over seeds")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.learning_curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7], help="one run per row and seed")
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=[row.name for row in ROWS],
        default=[row.name for row in ROWS],
        help="which rows to train (default: all); the full row always runs, it sets the steps",
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="the run config every row starts from")
    parser.add_argument(
        "--out",
        type=Path,
        default=RUNS,
        help=f"folder of the runs, the table and the plot (default {RUNS.relative_to(ROOT)})",
    )
    parser.add_argument(
        "overrides", nargs="*", help="KEY=VALUE settings for every run (e.g. training.epochs=1 for a smoke run)"
    )
    args = parser.parse_args(argv)
    chosen = [row for row in ROWS if row.name in set(args.rows) | {FULL}]

    trained: dict[tuple[str, int], tuple[Path, float | None]] = {}
    for seed in args.seeds:
        full = train(next(row for row in ROWS if row.name == FULL), seed, None, args.config, args.overrides, args.out)
        trained[FULL, seed] = full
        steps = trained_steps(full[0])
        for row in chosen:
            if row.name != FULL:
                trained[row.name, seed] = train(
                    row, seed, steps if row.equal_steps else None, args.config, args.overrides, args.out
                )
    # Finished runs of other seeds count too, so seeds can be trained in separate invocations.
    for row in chosen:
        for run in sorted(args.out.glob(f"{row.name}-s*")):
            seed = run.name.removeprefix(f"{row.name}-s")
            if seed.isdigit() and (run / "model" / "tagger.json").is_file():
                trained.setdefault((row.name, int(seed)), (run, None))

    results = []
    for row in chosen:
        tokens, triggers = train_tokens(row.train)
        for (name, seed), (run, minutes) in sorted(trained.items(), key=lambda item: item[0][1]):
            if name == row.name:
                results.append(
                    {
                        "row": row.name,
                        "title": row.title,
                        "seed": seed,
                        "equal_steps": row.equal_steps,
                        "tokens": tokens,
                        "triggers": triggers,
                        "steps": trained_steps(run),
                        "minutes": minutes,
                        **scores(run),
                    }
                )

    table_rows = []
    for row in chosen:
        mine = [result for result in results if result["row"] == row.name]
        seeds = ", ".join(f"{result['seed']}" for result in mine)
        table_rows.append(
            [
                row.title,
                f"{mine[0]['tokens']:,}",
                f"{mine[0]['triggers']:,}",
                f"{mine[0]['steps']:,}",
                *(mean([r[key] for r in mine if r[key] is not None]) for key in SCORED),
                seeds,
                " / ".join(", ".join(f"{r[key]:.2f}" for key in SCORED if r[key] is not None) for r in mine),
            ]
        )
    headers = [
        "training data",
        "tokens",
        "triggers",
        "steps",
        "entities F1",
        "events F1",
        "AQMAR events F1",
        "arguments F1, gold mentions",
        "seeds",
        "per seed (entities, events, AQMAR events, arguments)",
    ]
    text = "\n".join(
        [
            f"`{command_line('bench.learning_curve', argv)}`",
            "",
            "Offline default; F1 on ANERcorp-Events test (entities, events, arguments: labelled, with gold "
            "mentions) and AQMAR-Events test (events); the mean over seeds, then each seed.",
            "",
            markdown_table(headers, table_rows, right={1, 2, 3, 4, 5, 6, 7}),
        ]
    )
    path = write_result(
        "learning-curve", text, {"command": command_line("bench.learning_curve", argv), "results": results}, args.out
    )
    plot(results, path.with_suffix(".png"))
    print(text)
    print(f"written: {path}, {path.with_suffix('.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
