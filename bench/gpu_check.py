"""The GPU check (`make gpu-check`): what the first GPU run must show, as one Markdown table, in under 8 minutes.

- An AraBERT-shaped stand-in (BERT-base: 12 layers, 768 hidden, 12 heads; a 64,000-piece WordPiece vocabulary
  trained on the corpora; random weights), in a folder shaped like the Hub's (train/encoders.py
  write_bert_stand_in), trained for one epoch of the joint default (configs/arabertv02.yaml) on ANERcorp-Events
  through `accelerate launch` at bf16: samples/s, seconds per epoch, peak GPU memory.
- The Tagger's words/s on the ANERcorp-Events test split with that model at bf16.
- The offline default (configs/e5-small-offline.yaml, the `make demo` recipe) trained in full on the GPU: its
  test F1 next to the 2-core CPU runs' (docs/RESULTS.md), which it should match within their spread.
- The GPU, torch and CUDA versions.

    python -m bench.gpu_check            # on a GPU
    python -m bench.gpu_check --tiny     # the mechanics on the CPU: tiny shapes, a few steps (tests/test_gpu_check.py)

The runs land in runs/gpu-check/ (--out), the table also in gpu-check.md and gpu-check.json there.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIG = ROOT / "configs" / "accelerate" / "single-gpu.yaml"
ARABERT_CONFIG = ROOT / "configs" / "arabertv02.yaml"
OFFLINE_CONFIG = ROOT / "configs" / "e5-small-offline.yaml"
BERT_BASE = {"vocab_size": 64_000, "hidden_size": 768, "layers": 12, "heads": 12}  # AraBERT v0.2 base's shape
TINY = {"vocab_size": 1_000, "hidden_size": 32, "layers": 2, "heads": 2}
# --tiny: a few steps on the CPU, the offline leg with the tiny test encoder instead of e5-small
TINY_TRAINING = [
    "training.device=cpu",
    "training.max_steps=3",
    "training.batch_size=8",
    "training.eval_batch_size=16",
    "training.threads=1",
]
# The same recipe on the 2-core CPU: docs/RESULTS.md, "Event arguments", the default's rows (seeds 42 and 7, and
# the `make demo` run of seed 42), test F1 in %; arguments end to end, labelled.
CPU_RUNS = {"entities": (73.04, 72.76, 73.76), "events": (66.32, 64.29, 66.55), "arguments": (39.29, 37.43, 41.24)}
CPU_MEANS = {"entities": 72.90, "events": 65.31, "arguments": 38.36}  # the two seeds' means, as the README quotes
# bf16 runs of one seed move by up to 2 F1 points (README, "What the tagger guarantees"): the GPU run agrees
# when it lies within the CPU runs' range widened by that much
BF16_SPREAD = 2.0
BUDGET_SECONDS = 8 * 60
MEMORY_FILE = "peak-memory.json"


def corpus_texts(root: Path) -> list[str]:
    """Every sentence of every corpus found under `root`, its words as arabert_v02 gives them to AraBERT."""
    from corpora.reader import corpus_specs, load_split
    from models.text import normalise_word

    texts = []
    for corpus, spec in corpus_specs().items():
        for split, file in sorted(spec["files"].items()):
            if (root / spec["dir"] / file).is_file():
                texts += [
                    " ".join(normalise_word(word, "arabert_v02") for word in sentence.words)
                    for sentence in load_split(f"{corpus}:{split}", root)
                ]
    return texts


def launch(out: Path, name: str, config: Path, overrides: list[str]) -> Path:
    """`accelerate launch -m train` (through this module's --train-child, which records the peak memory) as
    `make train` runs it; returns the run folder."""
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [
        str(accelerate),
        "launch",
        "--config_file",
        str(ACCELERATE_CONFIG),
        "-m",
        "bench.gpu_check",
        "--train-child",
        str(out / name / MEMORY_FILE),
        "--config",
        str(config),
        "--overwrite",
        f"name={name}",
        f"output_dir={out}",
        *overrides,
    ]
    print(f"  {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    result = subprocess.run(
        command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"training {name} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return out / name


def train_child(memory_file: Path, argv: list[str]) -> int:
    """Under accelerate launch: `python -m train argv`, then the process's peak memory into memory_file."""
    import torch

    from bench.common import peak_rss_mb
    from train.__main__ import main as train_main

    code = train_main(argv)
    if code == 0 and os.environ.get("RANK", "0") == "0":
        memory = {"peak_rss_mb": peak_rss_mb()}
        if torch.cuda.is_available():
            memory.update(
                allocated_gib=torch.cuda.max_memory_allocated() / 2**30,
                reserved_gib=torch.cuda.max_memory_reserved() / 2**30,
            )
        memory_file.parent.mkdir(parents=True, exist_ok=True)
        memory_file.write_text(json.dumps(memory) + "\n", encoding="utf-8")
    return code


def training_figures(run_dir: Path) -> dict:
    """From a finished run: the Trainer's speed over the run, the peak memory, and what the export measured."""
    with (run_dir / "log.csv").open(encoding="utf-8") as handle:
        final = [row for row in csv.DictReader(handle) if row.get("train_runtime")][-1]
    provenance = json.loads((run_dir / "model" / "tagger.json").read_text(encoding="utf-8"))["provenance"]
    return {
        "train_seconds": float(final["train_runtime"]),
        "samples_per_second": float(final["train_samples_per_second"]),
        "epochs": float(final["epoch"]),
        "memory": json.loads((run_dir / MEMORY_FILE).read_text(encoding="utf-8")),
        # a layer's micro F1; the arguments' labelled F1 (end to end)
        "test": {
            layer: 100 * scores.get("micro_f1", scores.get("labelled_f1"))
            for layer, scores in provenance.get("metrics", {}).get("test", {}).items()
        },
        "run_seconds": provenance.get("train_seconds"),
    }


def tagger_speed(model_dir: Path, device: str, root: Path) -> dict:
    """Words per second of Tagger.predict_words on the ANERcorp-Events test split at bf16 (after a warm-up)."""
    import torch

    from corpora.reader import load_split
    from models import Tagger

    sentences = load_split("anercorp-events:test", root)
    words = [list(sentence.words) for sentence in sentences]
    documents = [sentence.document for sentence in sentences]
    tagger = Tagger.load(model_dir, device=device, precision="bf16")
    tagger.predict_words(words[:64], documents[:64])
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    tagger.predict_words(words, documents)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    count = sum(map(len, words))
    return {"words": count, "seconds": seconds, "words_per_second": count / seconds}


def versions() -> dict:
    import torch
    import transformers

    found = {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        found.update(
            gpu=properties.name, gpu_memory_gib=properties.total_memory / 2**30, bf16=torch.cuda.is_bf16_supported()
        )
        try:
            found["driver"] = (
                subprocess.run(
                    ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
    return found


def agreement(gpu: dict[str, float]) -> dict[str, bool]:
    """Per layer: the GPU run's test F1 within the CPU runs' range widened by the bf16 spread."""
    return {
        layer: min(runs) - BF16_SPREAD <= gpu[layer] <= max(runs) + BF16_SPREAD
        for layer, runs in CPU_RUNS.items()
        if layer in gpu
    }


def table(found: dict, standin: dict, speed: dict, offline: dict, agrees: dict, tiny: bool, seconds: float) -> str:
    from bench.common import markdown_table

    memory = standin["memory"]
    peak = (
        f"{memory['allocated_gib']:.1f} GiB allocated, {memory['reserved_gib']:.1f} GiB reserved"
        if "allocated_gib" in memory
        else f"no GPU; peak RSS {memory['peak_rss_mb']:,.0f} MB"
    )
    shape = TINY if tiny else BERT_BASE
    standin_name = (
        f"AraBERT-shaped stand-in ({shape['layers']} layers, {shape['hidden_size']} hidden, "
        f"{shape['heads']} heads, {shape['vocab_size']:,} pieces, random weights), "
        f"{'3 steps' if tiny else 'one epoch'} of configs/arabertv02.yaml, bf16"
    )
    layers = ("entities", "events", "arguments")
    gpu_f1 = " / ".join(f"{offline['test'][layer]:.2f}" if layer in offline["test"] else "-" for layer in layers)
    cpu_f1 = " / ".join(f"{CPU_MEANS[layer]:.2f}" for layer in layers)
    cpu_range = " / ".join(f"{min(CPU_RUNS[layer]):.2f}-{max(CPU_RUNS[layer]):.2f}" for layer in layers)
    verdict = ", ".join(f"{layer} {'yes' if ok else 'NO'}" for layer, ok in agrees.items())
    offline_name = (
        "tiny:bert stand-in for e5-small, 3 steps"
        if tiny
        else "offline default (configs/e5-small-offline.yaml) in full on the GPU"
    )
    device = (
        (
            f"{found['gpu']}, {found['gpu_memory_gib']:.0f} GiB, bf16 {'yes' if found['bf16'] else 'no'}"
            + (f", driver {found['driver']}" if "driver" in found else "")
        )
        if "gpu" in found
        else "none (CPU)"
    )
    rows = [
        ["GPU", device],
        ["torch / CUDA / transformers", f"{found['torch']} / {found['cuda'] or 'none'} / {found['transformers']}"],
        [f"{standin_name}: samples/s", f"{standin['samples_per_second']:.1f}"],
        [
            "same: seconds per epoch (the Trainer's, with the epoch's dev evaluation)",
            f"{standin['train_seconds'] / standin['epochs']:.1f}",
        ],
        ["same: peak GPU memory (the whole run: training, evaluation, export)", peak],
        [
            "Tagger words/s, ANERcorp-Events test, that model at bf16",
            f"{speed['words_per_second']:,.0f} ({speed['words']:,} words in {speed['seconds']:.1f} s)",
        ],
        [f"{offline_name}: test F1 entities / events / arguments (end to end)", gpu_f1],
        ["same recipe on the 2-core CPU (docs/RESULTS.md): mean of 2 seeds; range of 3 runs", f"{cpu_f1}; {cpu_range}"],
        [f"agrees (within the CPU range ± {BF16_SPREAD:.0f}, the bf16 spread)", verdict],
        ["wall time of this check", f"{seconds:.0f} s (budget {BUDGET_SECONDS} s)"],
    ]
    return markdown_table(["check", "result"], rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--train-child"]:  # under accelerate launch: --train-child MEMORY_FILE TRAIN_ARGS...
        return train_child(Path(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and a few steps on the CPU: the mechanics")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check", help="where the runs go")
    args = parser.parse_args(argv)

    import torch

    from corpora.reader import data_root

    if not args.tiny and not torch.cuda.is_available():
        print(
            "error: torch sees no GPU; `python -m bench.gpu_check --tiny` checks the mechanics on the CPU",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    root = data_root()
    out = args.out.resolve()
    device = "cpu" if args.tiny else "cuda"
    shape = TINY if args.tiny else BERT_BASE
    extra = [f"data_root={root}", *(TINY_TRAINING if args.tiny else [])]

    print("building the AraBERT-shaped stand-in", file=sys.stderr, flush=True)
    standin_dir = out / "arabert-standin-encoder"
    write_started = time.perf_counter()
    from train.encoders import write_bert_stand_in

    write_bert_stand_in(standin_dir, corpus_texts(root), shape)
    print(f"  {time.perf_counter() - write_started:.0f} s", file=sys.stderr, flush=True)
    standin_run = launch(
        out,
        "arabert-standin",
        ARABERT_CONFIG,
        [
            f"encoder={standin_dir}",
            "training.epochs=1",
            "training.precision=bf16",
            "training.checkpoint_every_steps=0",
            *extra,
        ],
    )
    standin = training_figures(standin_run)
    speed = tagger_speed(standin_run / "model", device, root)
    offline_run = launch(
        out,
        "e5-small-offline",
        OFFLINE_CONFIG,
        [*extra, *(["encoder=tiny:bert"] if args.tiny else ["training.device=cuda"])],
    )
    offline = training_figures(offline_run)
    agrees = agreement(offline["test"])
    found = versions()
    seconds = time.perf_counter() - started
    text = table(found, standin, speed, offline, agrees, args.tiny, seconds)
    print(text)
    data = {
        "versions": found,
        "standin": standin,
        "tagger": speed,
        "offline": offline,
        "agrees": agrees,
        "cpu_runs": CPU_RUNS,
        "seconds": seconds,
        "tiny": args.tiny,
    }
    (out / "gpu-check.md").write_text(text + "\n", encoding="utf-8")
    (out / "gpu-check.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if seconds > BUDGET_SECONDS and not args.tiny:
        print(f"warning: the check took {seconds:.0f} s, over its {BUDGET_SECONDS} s budget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
