"""Corpus tagging: `python -m models.corpus` in 1 process and under `accelerate launch` in 2 (gloo, this CPU), side
by side in one run: documents/s and words/s of each, and the 2-process speed over the 1-process one.

    python -m bench.corpus --checkpoint runs/e5-small-offline/model      # about a minute on 2 cores
    python -m bench.corpus --checkpoint DIR --limit 40 --passes 1         # a smoke run

Documents: the ANERcorp test sentences as raw text, every --sentences-per-document of them one document (about
a short news article), written once to a JSONL file that every pass reads. Each pass is the real command in a
fresh output folder; its speed is the one it reports in summary.json (the tagging, reading and writing, from
when every process has loaded the model to when the last one has committed). Passes alternate (1, 2, 2, 1,
...) so that a loaded minute on a shared machine falls on both rows; the ratio is taken per pair. Threads:
one process uses torch's default (every core), each of two gets one (accelerate's default), so both rows use
the same cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    DEFAULT_CHECKPOINT,
    ROOT,
    check_checkpoint,
    command_line,
    interleaved_passes,
    load_average,
    machine,
    markdown_table,
    write_result,
)

ROWS = {"1 process": 1, "2 processes": 2}


def write_documents(path: Path, sentences_per_document: int, limit: int | None) -> tuple[int, int]:
    """The JSONL input; returns (documents, words)."""
    from bench.inference import anercorp_sentences

    sentences = [" ".join(sentence.words) for sentence in anercorp_sentences(limit)]
    documents = [
        " ".join(sentences[begin : begin + sentences_per_document])
        for begin in range(0, len(sentences), sentences_per_document)
    ]
    with path.open("w", encoding="utf-8") as handle:
        for index, text in enumerate(documents):
            handle.write(json.dumps({"id": f"anercorp-test-{index}", "text": text}, ensure_ascii=False) + "\n")
    return len(documents), sum(len(text.split()) for text in documents)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_pass(processes: int, checkpoint: Path, inputs: Path, out: Path, extra: list[str]) -> dict:
    arguments = [
        "-m",
        "models.corpus",
        "--checkpoint",
        str(checkpoint),
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--no-progress",
        *extra,
    ]
    if processes == 1:
        command = [sys.executable, *arguments]
    else:
        accelerate = Path(sys.executable).parent / "accelerate"
        command = [
            str(accelerate),
            "launch",
            "--config_file",
            str(ROOT / "configs/accelerate/cpu-2-processes.yaml"),
            "--num_processes",
            str(processes),
            "--main_process_port",
            str(free_port()),
            *arguments,
        ]
    started = time.perf_counter()
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if child.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary["wall_seconds"] = time.perf_counter() - started
    print(
        f"  {processes} process(es): {summary['documents_per_second']:,.2f} documents/s, "
        f"{summary['words_per_second']:,.0f} words/s",
        file=sys.stderr,
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--passes", type=int, default=2, help="passes of each row, interleaved (default 2)")
    parser.add_argument("--sentences-per-document", type=int, default=10, help="(default 10)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N ANERcorp test sentences")
    parser.add_argument("--precision", default="auto", help="models.corpus --precision (default auto)")
    parser.add_argument(
        "--results", type=Path, default=None, help="where corpus.md and corpus.json go (default runs/bench)"
    )
    args = parser.parse_args(argv)
    checkpoint = check_checkpoint(args.checkpoint)
    command = command_line("bench.corpus", argv)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as temporary:
        work = Path(temporary)
        documents, words = write_documents(work / "documents.jsonl", args.sentences_per_document, args.limit)
        outputs = itertools.count()  # each pass writes into a fresh folder
        passes = interleaved_passes(
            {
                row: lambda launch=launch: run_pass(
                    launch,
                    checkpoint,
                    work / "documents.jsonl",
                    work / f"pass-{next(outputs)}",
                    ["--precision", args.precision],
                )
                for row, launch in ROWS.items()
            },
            args.passes,
        )
    load_after = load_average()
    speed = {row: [result["documents_per_second"] for result in results] for row, results in passes.items()}
    ratios = [two / one for one, two in zip(speed["1 process"], speed["2 processes"])]
    rows = []
    for row, results in passes.items():
        rows.append(
            [
                row,
                results[0]["threads_per_process"],
                f"{statistics.median(speed[row]):,.2f}",
                f"{statistics.median(result['words_per_second'] for result in results):,.0f}",
                f"{statistics.median(result['load_seconds'] for result in results):,.1f}",
                f"{statistics.median(result['wall_seconds'] for result in results):,.1f}",
            ]
        )
    table = markdown_table(
        ["row", "threads per process", "documents/s", "words/s", "model loading s", "wall s"],
        rows,
        right={1, 2, 3, 4, 5},
    )
    text = "\n".join(
        [
            f"Corpus tagging, {checkpoint} ({time.strftime('%Y-%m-%d %H:%M')}): {documents:,} documents of "
            f"{args.sentences_per_document} ANERcorp test sentences ({words:,} words), medians of {args.passes} "
            "interleaved passes per row.",
            "",
            f"`{command}`",
            "",
            table,
            "",
            f"2 processes / 1 process: {statistics.median(ratios):.2f}x (median; "
            f"{min(ratios):.2f}-{max(ratios):.2f} over the pairs of passes). Documents/s and words/s from each pass's "
            "summary.json: from when every process has loaded the model to the last commit.",
            f"Load average {load_before:.2f} before, {load_after:.2f} after. Machine: {machine()}.",
        ]
    )
    print(text)
    data = {
        "checkpoint": str(checkpoint),
        "documents": documents,
        "words": words,
        "passes": passes,
        "ratios": ratios,
        "machine": machine(),
        "command": command,
        "load_average": [load_before, load_after],
    }
    print(f"\nwritten: {write_result('corpus', text, data, args.results)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
