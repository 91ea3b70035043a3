"""Serving: `python -m models.serve` (concurrent requests batched into one Tagger call) against a naive FastAPI
endpoint that runs transformers.pipeline on each request alone (the same checkpoint's entities layer exported
standalone), side by side in one run: texts/s and latency percentiles at each concurrency, errors, and each
server's resident memory before and after --requests more requests.

    python -m bench.serve --checkpoint runs/e5-small-offline/model               # about 15 minutes
    python -m bench.serve --checkpoint DIR --duration 2 --requests 100            # a smoke run

Each request carries one ANERcorp test sentence (raw text: its words joined by spaces), cycling through the
test set. Both servers run in child processes, started and measured alike; the clients run in this process
(asyncio and aiohttp, one connection per concurrent client, the bodies encoded once beforehand), so at high
concurrency they take CPU from the server they measure, the same per request for both rows. httpx's client,
used before, took about 1.8 ms of CPU per request (aiohttp's about 0.15): at 32 clients, 13% of the faster
server's throughput went to the benchmark itself. Rows alternate at each concurrency (the first of a pair
alternates too), so that a loaded minute on a shared machine falls on both. Errors: a request that does not
come back 200. The naive endpoint takes one request at a time (a lock around the pipeline): a fast tokenizer
called from FastAPI's threadpool by several requests at once fails with "Already borrowed".
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
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
    load_average,
    machine,
    markdown_table,
    write_result,
)

CONCURRENCY = (1, 8, 32)
ROWS = {
    "serve": "python -m models.serve: requests batched, Tagger with both layers (and arguments)",
    "naive": "FastAPI + transformers.pipeline per request, entities layer only",
}
BASELINE = "naive"


# ------------------------------------------------------------------------------------------- the naive server


def naive_app(model: Path, aggregation: str):
    """The endpoint a first version would be: one pipeline, each request tagged on its own."""
    import threading
    import warnings

    from fastapi import FastAPI
    from transformers import pipeline

    from bench.inference import PIPELINE_STRIDE

    warnings.simplefilter("ignore")  # "Tokenizer does not support real words": once per piece, by design
    ner = pipeline("token-classification", model=str(model), device="cpu", aggregation_strategy=aggregation)
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/tag")
    def tag(body: dict):
        with lock:
            found = ner(body["text"], stride=PIPELINE_STRIDE)
        return {
            "entities": [
                {
                    "label": entity["entity_group"],
                    "start": entity["start"],
                    "end": entity["end"],
                    "score": float(entity["score"]),
                }
                for entity in found
            ]
        }

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


# ------------------------------------------------------------------------------------------- measuring


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """A server in a child process on a free loopback port."""

    def __init__(self, name: str, command: list[str], log: Path):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.name, self.base = name, f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )

    def wait(self, seconds: float = 600) -> None:
        import httpx

        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"error: the {self.name} server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"error: the {self.name} server was not up within {seconds:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def load(
    base: str, texts: list[str], concurrency: int, seconds: float | None = None, requests: int | None = None
) -> dict:
    """`concurrency` clients, each sending its next text as soon as its last came back, for `seconds` or until
    `requests` are sent in all."""
    import aiohttp

    bodies = [json.dumps({"text": text}, ensure_ascii=False).encode("utf-8") for text in texts]
    headers = {"content-type": "application/json"}
    latencies, errors = [], 0
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        stop = started + seconds if seconds is not None else float("inf")

        async def client_loop():
            nonlocal errors
            while True:
                index = next(counter)
                if (requests is not None and index >= requests) or time.perf_counter() >= stop:
                    return
                sent = time.perf_counter()
                try:
                    async with session.post("/tag", data=bodies[index % len(bodies)], headers=headers) as response:
                        await response.read()
                        failed = response.status != 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    failed = True
                if failed:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [float("nan")] * 99
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "texts_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * cuts[49],
        "p95_ms": 1000 * cuts[94],
        "p99_ms": 1000 * cuts[98],
    }


def report(
    results: dict, memory: dict, args, checkpoint: Path, texts: int, command: str, load: tuple[float, float]
) -> str:
    rows = []
    for concurrency in args.concurrency:
        base = results[concurrency][BASELINE]
        for name in ROWS:
            result = results[concurrency][name]
            rows.append(
                [
                    concurrency,
                    name,
                    f"{result['texts_per_s']:,.1f}",
                    f"{result['texts_per_s'] / base['texts_per_s']:.2f}x" if base["texts_per_s"] else "-",
                    f"{result['p50_ms']:,.0f}",
                    f"{result['p95_ms']:,.0f}",
                    f"{result['p99_ms']:,.0f}",
                    f"{result['requests']:,}",
                    result["errors"],
                ]
            )
    table = markdown_table(
        ["concurrency", "server", "texts/s", "vs naive", "p50 ms", "p95 ms", "p99 ms", "requests", "errors"],
        rows,
        right={0, 2, 3, 4, 5, 6, 7, 8},
    )
    memory_rows = [
        [
            name,
            f"{value['rss_before_mb']:,.0f}",
            f"{value['rss_after_mb']:,.0f}",
            f"{value['rss_after_mb'] - value['rss_before_mb']:+,.0f}",
            f"{value['requests']:,}",
            value["errors"],
        ]
        for name, value in memory.items()
    ]
    memory_table = markdown_table(
        ["server", "RSS before MB", "RSS after MB", "change", "requests", "errors"], memory_rows, right={1, 2, 3, 4, 5}
    )
    return "\n".join(
        [
            f"Serving, {checkpoint} ({time.strftime('%Y-%m-%d %H:%M')}): one ANERcorp test sentence per request "
            f"({texts:,} sentences, cycled), {args.duration:g} s per row and concurrency, rows interleaved.",
            "",
            f"`{command}`",
            "",
            table,
            "",
            f"Resident memory of each server before and after {args.requests:,} more requests at concurrency "
            f"{max(args.concurrency)}:",
            "",
            memory_table,
            "",
            "Rows: " + "; ".join(f"*{name}*: {what}" for name, what in ROWS.items()) + ". "
            f"The service: --max-batch {args.max_batch}, --max-wait-ms {args.max_wait_ms:g}, "
            f"--workers {args.workers if args.workers is not None else 'default'}, precision {args.precision}.",
            f"Load average {load[0]:.2f} before, {load[1]:.2f} after. Machine: {machine()}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per row and concurrency (default 60)")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, CONCURRENCY)),
        help=f"comma-separated client counts (default {','.join(map(str, CONCURRENCY))})",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="requests sent to each server between its two memory readings (default 10,000)",
    )
    parser.add_argument("--max-batch", type=int, default=32, help="the service's --max-batch (default 32)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the service's --max-wait-ms (default 5)")
    parser.add_argument("--workers", type=int, default=None, help="the service's --workers (default: its default)")
    parser.add_argument("--precision", default="auto", help="the service's --precision (default auto)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N ANERcorp test sentences")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the export and the server logs (kept); default: a temporary folder",
    )
    parser.add_argument(
        "--results", type=Path, default=None, help="where serve.md and serve.json go (default runs/bench)"
    )
    parser.add_argument("--naive-server", type=Path, help=argparse.SUPPRESS)  # child: serve this export naively
    parser.add_argument("--aggregation", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_server:
        import uvicorn

        uvicorn.run(
            naive_app(args.naive_server, args.aggregation),
            host="127.0.0.1",
            port=args.port,
            access_log=False,
            log_level="warning",
        )
        return 0
    args.concurrency = [int(value) for value in args.concurrency.split(",") if value]
    checkpoint = check_checkpoint(args.checkpoint)
    from bench.inference import anercorp_sentences, export
    from train.export import pipeline_aggregation

    texts = [" ".join(sentence.words) for sentence in anercorp_sentences(args.limit)]
    command = command_line("bench.serve", argv)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        standalone = work / "entities"
        if not (standalone / "config.json").is_file():
            print(f"exporting the entities layer to {standalone}", file=sys.stderr)
            export(["--checkpoint", str(checkpoint), "--layer", "entities", "--to", str(standalone)])
        python = sys.executable
        servers = {
            "serve": Server(
                "serve",
                [
                    python,
                    "-m",
                    "models.serve",
                    "--checkpoint",
                    str(checkpoint),
                    "--no-access-log",
                    "--max-batch",
                    str(args.max_batch),
                    "--max-wait-ms",
                    str(args.max_wait_ms),
                    "--precision",
                    args.precision,
                    *(["--workers", str(args.workers)] if args.workers is not None else []),
                ],
                work / "serve.log",
            ),
            "naive": Server(
                "naive",
                [
                    python,
                    "-m",
                    "bench.serve",
                    "--naive-server",
                    str(standalone),
                    "--aggregation",
                    pipeline_aggregation(checkpoint),
                ],
                work / "naive.log",
            ),
        }
        try:
            for server in servers.values():
                server.wait()
            load_before = load_average()
            for server in servers.values():  # warm-up: first-call allocations are not what is measured
                asyncio.run(load(server.base, texts, max(args.concurrency), requests=4 * max(args.concurrency)))
            results = {}
            for index, concurrency in enumerate(args.concurrency):
                order = list(servers) if index % 2 == 0 else list(servers)[::-1]
                results[concurrency] = {}
                for name in order:
                    results[concurrency][name] = asyncio.run(
                        load(servers[name].base, texts, concurrency, seconds=args.duration)
                    )
                    result = results[concurrency][name]
                    print(
                        f"  concurrency {concurrency}, {name}: {result['texts_per_s']:,.1f} texts/s, "
                        f"p99 {result['p99_ms']:,.0f} ms, {result['errors']} errors",
                        file=sys.stderr,
                        flush=True,
                    )
            memory = {}
            for name, server in servers.items():
                before = rss_mb(server.process.pid)
                result = asyncio.run(load(server.base, texts, max(args.concurrency), requests=args.requests))
                memory[name] = {
                    "rss_before_mb": before,
                    "rss_after_mb": rss_mb(server.process.pid),
                    "requests": result["requests"],
                    "errors": result["errors"],
                }
            load_after = load_average()
        finally:
            for server in servers.values():
                server.stop()
    text = report(results, memory, args, checkpoint, len(texts), command, (load_before, load_after))
    print(text)
    data = {
        "checkpoint": str(checkpoint),
        "results": results,
        "memory": memory,
        "machine": machine(),
        "command": command,
        "load_average": [load_before, load_after],
    }
    print(f"\nwritten: {write_result('serve', text, data, args.results)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
