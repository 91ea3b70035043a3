"""Score a checkpoint with seqeval and write its reports: python -m eval --checkpoint DIR [--data corpus:split]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.harness import evaluate_with_predictions, render, write_report, write_views
from eval.model_card import write_model_card
from eval.plots import TRAINING_CURVES, plot_training_curves
from models.checkpoint import CheckpointError
from models.precision import PRECISIONS
from models.tagger import Tagger
from train.corpora import CorpusError, data_root, load_split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval",
        description="Tag a corpus split with a checkpoint and report seqeval micro F1 (default and strict IOB2), "
                    "macro F1 and per-type P/R/F1 for each layer. Writes into the checkpoint folder (or --out): "
                    "eval-<corpus>-<split>.json and .md, PNG plots (F1 per type for each layer, entity span "
                    "confusion matrix; training curves from the run's log.csv), an HTML page of gold versus "
                    "predicted spans, and the model card README.md (in the checkpoint, unless --out is given).")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint folder, e.g. runs/e5-small-offline/model")
    parser.add_argument("--data", action="append", default=None,
                        help="corpus:split from configs/corpora.yaml, e.g. anercorp:test (repeatable; "
                             "default: the test split the checkpoint's run named)")
    parser.add_argument("--data-root", default=None, help="data folder (default: $ARABIC_NEWS_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the reports (default: the checkpoint)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows (sentences, or parts of long ones) per forward pass (default: 64)")
    parser.add_argument("--decoding", choices=["viterbi", "argmax"], default=None,
                        help="label choice per word (default: the checkpoint's, viterbi = well-formed IOB2)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (default): the exact model, the same scores on every machine; auto: what the "
                             "Tagger runs by default here (bf16 where native); bf16; int8")
    args = parser.parse_args(argv)
    try:
        tagger = Tagger.load(args.checkpoint, batch_size=args.batch_size, decoding=args.decoding,
                             precision=args.precision)
        root = data_root(args.data_root)
        names = args.data or [tagger.info.get("data", {}).get("test")]
        if not names[0]:
            raise ValueError(f"{args.checkpoint} names no test split; pass --data corpus:split")
        out_dir = args.out or args.checkpoint
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for data in names:
            sentences = load_split(data, root)
            report, predicted = evaluate_with_predictions(tagger, sentences, data)
            written += [*write_report(report, out_dir), *write_views(report, sentences, predicted, tagger.layers, out_dir)]
            print(render(report) + "\n")
        log_csv = args.checkpoint.resolve().parent / "log.csv"
        if log_csv.is_file():
            curves = plot_training_curves(log_csv, out_dir / TRAINING_CURVES, title=tagger.info.get("run", "run"))
            written += [curves] if curves else []
        if args.out is None:
            written.append(write_model_card(args.checkpoint))
        print("written:\n" + "\n".join(f"  {path}" for path in written))
    except (CheckpointError, CorpusError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
