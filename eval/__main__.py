"""Score a checkpoint with seqeval and write its reports: python -m eval --checkpoint DIR [--data corpus:split|FILE]"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import UserError, reports_user_errors, user_path
from models.names import DECODERS, PRECISIONS

if TYPE_CHECKING:
    from corpora.reader import Sentence

# `--data` values ending so are files even before they exist, so a mistyped path says "does not exist"
# rather than "unknown corpus"
CONLL_SUFFIXES = (".conll", ".txt", ".tsv", ".iob", ".iob2", ".bio")
SKIP_COLUMN = "_"


def is_file_value(value: str) -> bool:
    """A `--data` value names a CoNLL file if it is one, contains a path separator or ends in CONLL_SUFFIXES;
    corpus:split names have none of these."""
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (
        Path(value).is_file() or any(sep in value for sep in separators) or Path(value).suffix.lower() in CONLL_SUFFIXES
    )


def file_label(path: Path) -> str:
    """The report name of a file: its name, with no path separator or other character unsafe in a file name."""
    return re.sub(r"[^\w.-]+", "_", path.name).strip("._") or "file"


def file_layers(columns: str | None, known: list[str]) -> list[str | None]:
    """--columns (comma-separated, `_` skips a column) or, by default, the checkpoint's layers in order."""
    if columns is None:
        return list(known)
    names = [name.strip() for name in columns.split(",")]
    unknown = [name for name in names if name != SKIP_COLUMN and name not in known]
    if unknown:
        raise UserError(
            f"--columns {columns}: unknown layer {unknown}; the checkpoint's layers: {known} "
            f"({SKIP_COLUMN} skips a column)"
        )
    repeated = sorted({name for name in names if name != SKIP_COLUMN and names.count(name) > 1})
    if repeated:
        raise UserError(f"--columns {columns}: {repeated} named twice")
    return [None if name == SKIP_COLUMN else name for name in names]


def load_data(value: str, layers: list[str | None], root: Callable[[], Path]) -> tuple[str, list[Sentence]]:
    """A `--data` value -> (report name, sentences). `root` is called only for a corpus split, so evaluating
    a file needs no data folder."""
    # here, not atop the module: the reader loads torch (models.arguments), which --help must not wait for
    from corpora.reader import CORPORA_FILE, CorpusError, corpus_specs, load_split, read_conll_file

    if is_file_value(value):
        path = Path(value).expanduser()
        return file_label(path), read_conll_file(path, layers)
    corpus = value.partition(":")[0]
    known = sorted(corpus_specs())
    if corpus not in known:
        raise CorpusError(
            f"unknown corpus {corpus} in --data {value}: known are {', '.join(known)} "
            f"(from {CORPORA_FILE}), or give a CoNLL file path"
        )
    return value, load_split(value, root())


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval",
        description="Tag a corpus split or a CoNLL file with a checkpoint and report seqeval micro F1 (default and "
        "strict IOB2), macro F1 and per-type P/R/F1 for each layer. Writes into the checkpoint folder "
        "(or --out): eval-<corpus>-<split>.json (or eval-<file name>.json) and .md, PNG plots (F1 per "
        "type for each layer, entity span confusion matrix; training curves from the run's log.csv), "
        "an HTML page of gold versus predicted spans, and the model card README.md (in the checkpoint, "
        "unless --out is given).",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a checkpoint folder, e.g. runs/e5-small-offline/model"
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="corpus:split from configs/corpora.yaml, e.g. anercorp:test, or a CoNLL file (an "
        "existing file, or a value with a / or a .conll/.txt/.tsv/.iob/.bio ending; reports "
        "eval-<file name>.*) (repeatable; default: the test split the checkpoint's run named)",
    )
    parser.add_argument(
        "--columns",
        default=None,
        help="a file's tag columns after the token, e.g. entities,events (_ skips one; "
        "default: the checkpoint's layers in order)",
    )
    parser.add_argument("--data-root", default=None, help="data folder (default: $ARABIC_NEWS_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the reports (default: the checkpoint)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="windows (sentences, or parts of long ones) per forward pass (default: 64)",
    )
    parser.add_argument(
        "--decoding",
        choices=DECODERS,
        default="viterbi",
        help="label choice per word (default: viterbi = well-formed IOB2)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default): the exact model, the same scores on every machine; auto: what the "
        "Tagger runs by default here (bf16 where native); bf16; int8",
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    # only now: --help and a bad option answer without waiting for torch
    from corpora.reader import data_root
    from eval.harness import evaluate_with_predictions, render, write_report, write_views
    from eval.model_card import write_model_card
    from eval.plots import TRAINING_CURVES, plot_training_curves
    from models.tagger import Tagger

    tagger = Tagger.load(args.checkpoint, batch_size=args.batch_size, decoding=args.decoding, precision=args.precision)
    layers = file_layers(args.columns, list(tagger.layers))
    names = args.data or [tagger.provenance.get("data", {}).get("test")]
    if not names[0]:
        raise UserError(f"{args.checkpoint} names no test split; pass --data corpus:split or a CoNLL file")
    out_dir = args.out or args.checkpoint
    with user_path(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for data in names:
        label, sentences = load_data(data, layers, lambda: data_root(args.data_root))
        report, predicted = evaluate_with_predictions(tagger, sentences, label)
        with user_path(out_dir):
            written += [
                *write_report(report, out_dir),
                *write_views(report, sentences, predicted, tagger.layers, out_dir),
            ]
        print(render(report) + "\n")
    log_csv = args.checkpoint.resolve().parent / "log.csv"
    if log_csv.is_file():
        with user_path(out_dir):
            curves = plot_training_curves(log_csv, out_dir / TRAINING_CURVES, title=tagger.provenance.get("run", "run"))
        written += [curves] if curves else []
    if args.out is None:
        with user_path(args.checkpoint):
            written.append(write_model_card(args.checkpoint))
    print("written:\n" + "\n".join(f"  {path}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
