"""Training speed and F1: our run against the plain Hugging Face way, side by side on this machine.

The plain way is what `run_ner.py --pad_to_max_length` does with the same encoder and data: every sentence
tokenized on its own and padded (or truncated) to max_length, the first piece of each word labelled,
AutoModelForTokenClassification, all weights trainable, fp32, Trainer defaults otherwise. Ours is
`python -m train` with configs/e5-small-entities.yaml (dynamic padding, length-grouped batches, seen
embedding rows, bf16 autocast).

    python -m bench.training                  # speed: the first STEPS optimizer steps of each (minutes)
    python -m bench.training --epochs 3       # speed and F1 after full epochs of each (about an hour on 2 cores)

Each side runs in its own process (so peak RSS is its own); results go to runs/bench/training-*.json.
Words that the plain way truncates away are scored as `O` against the full gold standard.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
OURS_CONFIG = ROOT / "configs" / "e5-small-entities.yaml"
OUT = ROOT / "runs" / "bench"
PLAIN = {"max_length": 128, "batch_size": 16, "learning_rate": 5e-5}  # run_ner.py defaults but max_length


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def ours(steps: int, epochs: int) -> dict:
    from train.config import load_config
    from train.run import run

    length = [f"training.max_steps={steps}", "data.dev=null", "data.test=null"] if steps else [f"training.epochs={epochs}"]
    config = load_config(OURS_CONFIG, [f"output_dir={OUT}", f"name=ours-{steps or epochs}", *length])
    started = time.time()
    model_dir = run(config, overwrite=True)
    summary = _trainer_summary(model_dir.parent / "log.csv")
    info = json.loads((model_dir / "tagger.json").read_text(encoding="utf-8"))
    return {"side": "ours", "samples_per_second": summary["train_samples_per_second"],
            "train_seconds": summary["train_runtime"], "wall_seconds": round(time.time() - started, 1),
            "metrics": info.get("metrics", {}), "peak_rss_mb": round(peak_rss_mb())}


def _trainer_summary(log_csv: Path) -> dict:
    import csv

    with log_csv.open(encoding="utf-8") as handle:
        final = [row for row in csv.DictReader(handle) if row.get("train_runtime")][-1]
    return {key: float(final[key]) for key in ("train_runtime", "train_samples_per_second")}


def plain(steps: int, epochs: int) -> dict:
    """The run_ner.py recipe, written out: pad to max_length, first-piece labels, all weights, fp32."""
    import numpy as np
    import torch
    from seqeval.metrics import f1_score
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)

    from models.labels import bio_labels
    from train.corpora import data_root, load_split
    from train.offline_encoder import ensure_offline_encoder

    set_seed(42)
    encoder_dir = ensure_offline_encoder()
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    labels = bio_labels(["PERS", "LOC", "ORG", "MISC"])
    label_id = {label: index for index, label in enumerate(labels)}
    root = data_root()
    splits = {name: load_split(f"anercorp:{name}", root) for name in ("train", "dev", "test")}

    def features(sentences):
        encoded = tokenizer([list(s.words) for s in sentences], is_split_into_words=True, truncation=True,
                            max_length=PLAIN["max_length"], padding="max_length")
        rows = []
        for index, sentence in enumerate(sentences):
            word_ids, previous, row_labels = encoded.word_ids(index), None, []
            for word in word_ids:
                row_labels.append(-100 if word is None or word == previous else label_id[sentence.tags["entities"][word]])
                previous = word
            rows.append({"input_ids": encoded["input_ids"][index], "attention_mask": encoded["attention_mask"][index],
                         "labels": row_labels})
        return rows, encoded

    train_rows, _ = features(splits["train"])
    model = AutoModelForTokenClassification.from_pretrained(
        encoder_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id)
    args = TrainingArguments(output_dir=str(OUT / "plain-trainer"), per_device_train_batch_size=PLAIN["batch_size"],
                             learning_rate=PLAIN["learning_rate"], num_train_epochs=epochs or 1, max_steps=steps or -1,
                             seed=42, save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True,
                             logging_steps=50, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_rows,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    result = trainer.train()
    metrics = {}
    if not steps:
        model.eval()
        for split in ("dev", "test"):
            rows, encoded = features(splits[split])
            predicted = trainer.predict(rows).predictions.argmax(-1)
            gold, guessed, truncated = [], [], 0
            for index, sentence in enumerate(splits[split]):
                tags = ["O"] * len(sentence.words)  # words cut off by truncation stay O
                previous = None
                for position, word in enumerate(encoded.word_ids(index)):
                    if word is not None and word != previous:
                        tags[word] = labels[int(predicted[index][position])]
                    previous = word
                truncated += len(sentence.words) - len({w for w in encoded.word_ids(index) if w is not None})
                gold.append(list(sentence.tags["entities"]))
                guessed.append(tags)
            metrics[split] = {"entities": {"f1": round(float(f1_score(gold, guessed)), 6),
                                           "truncated_words": truncated}}
    return {"side": "plain", "samples_per_second": round(result.metrics["train_samples_per_second"], 3),
            "train_seconds": round(result.metrics["train_runtime"], 1), "metrics": metrics,
            "peak_rss_mb": round(peak_rss_mb()), "threads": torch.get_num_threads(), "numpy": np.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per side for the speed run (default 40)")
    parser.add_argument("--epochs", type=int, default=0, help="train full epochs instead and report F1 too")
    parser.add_argument("--side", choices=("ours", "plain"), help=argparse.SUPPRESS)  # one side, in a child process
    args = parser.parse_args(argv)
    steps = 0 if args.epochs else args.steps
    if args.side:
        result = (ours if args.side == "ours" else plain)(steps, args.epochs)
        print("RESULT " + json.dumps(result))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for side in ("ours", "plain"):
        child = subprocess.run([sys.executable, "-m", "bench.training", "--side", side, "--steps", str(steps),
                                "--epochs", str(args.epochs)], cwd=ROOT, capture_output=True, text=True)
        line = [text for text in child.stdout.splitlines() if text.startswith("RESULT ")]
        if child.returncode != 0 or not line:
            print(child.stderr[-3000:], file=sys.stderr)
            return 1
        results[side] = json.loads(line[-1][len("RESULT "):])
    what = f"{args.epochs} epochs" if args.epochs else f"first {steps} steps"
    (OUT / f"training-{'epochs' if args.epochs else 'steps'}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"Training on ANERcorp train, e5-small offline, batch 16, {what} ({time.strftime('%Y-%m-%d')})\n")
    print("| side | samples/s | ratio | train s | peak RSS MB | dev F1 | test F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = results["plain"]["samples_per_second"]
    for side, result in results.items():
        f1 = {split: result["metrics"].get(split, {}).get("entities", {}).get("f1") for split in ("dev", "test")}
        cells = [f"{100 * f1[s]:.2f}" if f1[s] is not None else "-" for s in ("dev", "test")]
        print(f"| {side} | {result['samples_per_second']:.2f} | {result['samples_per_second'] / base:.2f}x | "
              f"{result['train_seconds']:.0f} | {result['peak_rss_mb']} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
