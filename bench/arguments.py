"""What the argument head costs at inference: the same checkpoint's Tagger with its argument head and without it
(the same encoder pass, entities and events only), side by side in one process.

    python -m bench.arguments --checkpoint runs/e5-small-offline/model

Passes alternate (with, without, with, without, ...; the first of each pair alternates too) so that a loaded
minute on a shared machine falls on both rows alike; the ratio is taken per pair of passes and its median and
range are reported, with the machine's load average during the run. Texts: every ANERcorp-Events test sentence
as raw text and the seed news articles; words are whitespace-separated tokens.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

from bench.common import (
    DEFAULT_CHECKPOINT,
    check_checkpoint,
    command_line,
    interleaved_passes,
    load_average,
    machine,
    markdown_table,
    speed_ratios,
    timed,
    write_result,
)
from models.errors import UserError, reports_user_errors
from models.names import PRECISIONS

PASSES = 5  # timed pairs of passes per text set, after one untimed warm-up pass of each row


def texts() -> dict[str, list[str]]:
    from corpora.reader import data_root, load_split

    root = data_root()
    sentences = [" ".join(sentence.words) for sentence in load_split("anercorp-events:test", root)]
    return {
        "sentences": sentences,
        "articles": [path.read_text(encoding="utf-8") for path in sorted((root / "news").glob("*.txt"))],
    }


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.arguments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--passes", type=int, default=PASSES, help=f"timed pairs of passes (default {PASSES})")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the Tagger's precision (default: auto, as loaded by default)",
    )
    args = parser.parse_args(argv)
    if args.passes < 1:
        raise UserError(f"--passes must be at least 1, got {args.passes}")
    checkpoint = check_checkpoint(args.checkpoint)
    from models import Tagger

    with_head = Tagger.load(checkpoint, device="cpu", precision=args.precision)
    if with_head.argument_head is None:
        raise UserError(f"{checkpoint} has no argument head (tagger.json has no roles)")
    without = copy.copy(with_head)  # the same model and encoder, no pairs scored
    without.argument_head = None
    rows = {"with arguments": with_head, "without": without}
    load_before = load_average()
    results = {}
    for name, batch in texts().items():
        words = sum(len(text.split()) for text in batch)
        if not words:  # a data folder without the seed articles
            continue
        for tagger in rows.values():
            tagger.tag(batch)  # warm-up
        seconds = interleaved_passes(
            {row: lambda tagger=tagger, batch=batch: timed(lambda: tagger.tag(batch)) for row, tagger in rows.items()},
            args.passes,
        )
        results[name] = {
            "texts": len(batch),
            "words": words,
            "seconds": seconds,
            "ratios": speed_ratios(seconds, "with arguments", "without"),
        }
    load_after = load_average()
    table = []
    for name, result in results.items():
        speed = {row: result["words"] / statistics.median(values) for row, values in result["seconds"].items()}
        ratios = result["ratios"]
        table.append(
            [
                name,
                f"{result['texts']:,}",
                f"{result['words']:,}",
                f"{speed['without']:,.0f}",
                f"{speed['with arguments']:,.0f}",
                f"{statistics.median(ratios):.3f}",
                f"{min(ratios):.3f}-{max(ratios):.3f}",
            ]
        )
    text = "\n".join(
        [
            f"`{command_line('bench.arguments', argv)}`",
            "",
            markdown_table(
                [
                    "texts",
                    "n",
                    "words",
                    "words/s without",
                    "words/s with arguments",
                    "with/without speed (median)",
                    "range over passes",
                ],
                table,
                right={1, 2, 3, 4, 5, 6},
            ),
            "",
            f"{args.passes} interleaved pairs of passes, precision {with_head.precision}; load average "
            f"{load_before:.2f} before, {load_after:.2f} after. {machine()}",
        ]
    )
    print(text)
    path = write_result(
        "arguments",
        text,
        {"checkpoint": str(checkpoint), "results": results, "load_average": [load_before, load_after]},
    )
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
