"""Training speed and F1: our run against the plain Hugging Face way, side by side on this machine.

The plain way is what `run_ner.py --pad_to_max_length` does with the same encoder and data: every sentence
tokenized on its own and padded (or truncated) to max_length 128, the first piece of each word labelled,
AutoModelForTokenClassification, all weights trainable, fp32, lr 5e-5, Trainer defaults otherwise. Ours is
`python -m train` with configs/e5-small-entities.yaml (dynamic padding, length-grouped batches, only the
embedding rows ANERcorp uses trained, bf16 autocast). Both use batch 16.

    python -m bench.training                  # speed: the first 40 optimizer steps of each (a few minutes)
    python -m bench.training --epochs 3       # speed and F1 after 3 full epochs of each (about 45 minutes)

Each side runs in a child process of its own (so peak RSS is its own). With --epochs, speed is train
sentences x epochs / training seconds, and ours pays for a dev evaluation per epoch inside that time
(the plain side evaluates only at the end). Words that the plain way truncates away are scored as `O`
against the full gold standard, as a user of its predictions would see them.
Results: runs/bench/training-steps.{md,json} or training-epochs.{md,json}.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

from bench.common import OUT, ROOT, command_line, emit, machine, markdown_table, peak_rss_mb, run_child, write_result
from models.errors import reports_user_errors

OURS_CONFIG = ROOT / "configs" / "e5-small-entities.yaml"
PLAIN = {"max_length": 128, "batch_size": 16, "learning_rate": 5e-5, "seed": 42}


def ours(steps: int, epochs: int) -> dict:
    from corpora.reader import data_root, load_split
    from models.checkpoint import read_info
    from train.config import load_config
    from train.run import run

    recipe = load_config(OURS_CONFIG)["training"]  # the config's own schedule, before the overrides below
    # other epochs, same warmup steps as the config's own schedule: at lr 2e-4, 6% of 3 epochs (42 steps)
    # was too short and the run collapsed to all-O (dev F1 0.0); the config's 80 steps train
    warmup = recipe["warmup_ratio"] * recipe["epochs"] / epochs if epochs else recipe["warmup_ratio"]
    length = (
        [f"training.max_steps={steps}", "data.dev=null", "data.test=null"]
        if steps
        else [f"training.epochs={epochs}", f"training.warmup_ratio={warmup:.4f}"]
    )
    config = load_config(OURS_CONFIG, [f"output_dir={OUT}", f"name=ours-{'steps' if steps else 'epochs'}", *length])
    model_dir = run(config, overwrite=True)
    with (model_dir.parent / "log.csv").open(encoding="utf-8") as handle:
        final = [row for row in csv.DictReader(handle) if row.get("train_runtime")][-1]
    seconds = float(final["train_runtime"])
    metrics = read_info(model_dir).provenance.get("metrics", {})
    f1 = {split: metrics[split]["entities"]["micro_f1"] for split in ("dev", "test") if split in metrics}
    sentences = len(load_split("anercorp:train", data_root())) * epochs
    return {
        "side": "ours",
        "train_seconds": seconds,
        "samples_per_second": float(final["train_samples_per_second"]),
        "sentences_per_second": sentences / seconds if epochs else None,
        "f1": f1,
        "peak_rss_mb": peak_rss_mb(),
    }


def plain(steps: int, epochs: int) -> dict:
    """The run_ner.py recipe, written out: pad to max_length, first-piece labels, all weights, fp32."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from corpora.reader import data_root, load_split
    from eval.metrics import score_layer
    from models.labels import bio_labels
    from train.config import load_config
    from train.offline_encoder import ensure_offline_encoder

    encoder_dir = ensure_offline_encoder()
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    labels = bio_labels(load_config(OURS_CONFIG)["layers"]["entities"])  # the same label list as ours
    label_id = {label: index for index, label in enumerate(labels)}
    splits = {name: load_split(f"anercorp:{name}", data_root()) for name in ("train", "dev", "test")}

    def features(sentences):
        encoded = tokenizer(
            [list(s.words) for s in sentences],
            is_split_into_words=True,
            truncation=True,
            max_length=PLAIN["max_length"],
            padding="max_length",
        )
        rows = []
        for index, sentence in enumerate(sentences):
            previous, row_labels = None, []
            for word in encoded.word_ids(index):
                first_piece = word is not None and word != previous
                row_labels.append(label_id[sentence.tags["entities"][word]] if first_piece else -100)
                previous = word
            rows.append(
                {
                    "input_ids": encoded["input_ids"][index],
                    "attention_mask": encoded["attention_mask"][index],
                    "labels": row_labels,
                }
            )
        return rows, encoded

    model = AutoModelForTokenClassification.from_pretrained(
        encoder_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id
    )
    args = TrainingArguments(
        output_dir=str(OUT / "plain-trainer"),
        per_device_train_batch_size=PLAIN["batch_size"],
        learning_rate=PLAIN["learning_rate"],
        num_train_epochs=epochs or 1,
        max_steps=steps or -1,
        seed=PLAIN["seed"],
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        logging_steps=50,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=features(splits["train"])[0],
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    result = trainer.train()
    f1, truncated_words = {}, {}
    for split in ("dev", "test") if epochs else ():
        rows, encoded = features(splits[split])
        predicted = trainer.predict(rows).predictions.argmax(-1)
        gold, guessed, truncated_words[split] = [], [], 0
        for index, sentence in enumerate(splits[split]):
            tags, previous = ["O"] * len(sentence.words), None  # words cut off by truncation stay O
            for position, word in enumerate(encoded.word_ids(index)):
                if word is not None and word != previous:
                    tags[word] = labels[int(predicted[index][position])]
                previous = word
            truncated_words[split] += len(sentence.words) - len(set(encoded.word_ids(index)) - {None})
            gold.append(list(sentence.tags["entities"]))
            guessed.append(tags)
        f1[split] = score_layer(gold, guessed)["micro_f1"]  # as ours is scored, so the two compare
    seconds = result.metrics["train_runtime"]
    return {
        "side": "plain",
        "train_seconds": seconds,
        "samples_per_second": result.metrics["train_samples_per_second"],
        "sentences_per_second": len(splits["train"]) * epochs / seconds if epochs else None,
        "f1": f1,
        "truncated_words": truncated_words,
        "peak_rss_mb": peak_rss_mb(),
    }


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per side for the speed run (default 40)")
    parser.add_argument("--epochs", type=int, default=0, help="train full epochs instead, and report F1 too")
    parser.add_argument("--side", choices=("ours", "plain"), help=argparse.SUPPRESS)  # child: one side
    args = parser.parse_args(argv)
    steps = 0 if args.epochs else args.steps
    if args.side:
        emit((ours if args.side == "ours" else plain)(steps, args.epochs))
        return 0

    command = command_line("bench.training", argv)
    results = {
        side: run_child("bench.training", ["--side", side, "--steps", str(steps), "--epochs", str(args.epochs)])
        for side in ("ours", "plain")
    }
    speed = "sentences_per_second" if args.epochs else "samples_per_second"
    base = results["plain"][speed]
    rows = []
    for side, result in ((side, results[side]) for side in ("plain", "ours")):
        f1 = [f"{100 * result['f1'][split]:.2f}" if split in result["f1"] else "-" for split in ("dev", "test")]
        rows.append(
            [
                side,
                f"{result[speed]:.2f}",
                f"{result[speed] / base:.2f}x",
                f"{result['train_seconds']:.0f}",
                f"{result['peak_rss_mb']:,.0f}",
                *f1,
            ]
        )
    what = f"{args.epochs} full epochs" if args.epochs else f"the first {steps} optimizer steps"
    table = markdown_table(
        ["side", speed.replace("_per_second", "/s"), "ratio", "training s", "peak RSS MB", "dev F1", "test F1"],
        rows,
        right={1, 2, 3, 4, 5, 6},
    )
    ratio = results["ours"][speed] / base
    lines = [
        f"Training e5-small on ANERcorp train, batch 16, {what} ({time.strftime('%Y-%m-%d %H:%M')}).",
        "",
        f"`{command}`",
        "",
        table,
        "",
        f"Ours over plain: {ratio:.2f}x (target ≥ 2: {'met' if ratio >= 2 else 'NOT met'}).",
        f"Machine: {machine()}.",
    ]
    if args.epochs:
        lines.append(
            f"Plain: words cut by truncation at {PLAIN['max_length']} pieces, scored as O: "
            f"{results['plain']['truncated_words']}."
        )
    text = "\n".join(lines)
    print(text)
    name = "training-epochs" if args.epochs else "training-steps"
    print(
        f"\nwritten: {write_result(name, text, {**results, 'command': command, 'machine': machine()})}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
