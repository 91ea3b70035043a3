"""Smoke runs of bench.serve and bench.corpus on the tiny checkpoint and the synthetic corpus: seconds, not the
minutes of a measurement; they check that each benchmark runs end to end and reports what it should."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_distributed import ROOT, subprocess_env

pytestmark = pytest.mark.slow


def bench(module: str, args: list[str], data_root: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**subprocess_env(), "ARABIC_NEWS_DATA": str(data_root)},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_bench_serve_runs_both_servers_at_each_concurrency(tiny_run: Path, tiny_data_root: Path, tmp_path: Path):
    pytest.importorskip("fastapi")
    result = bench(
        "bench.serve",
        [
            "--checkpoint",
            str(tiny_run / "model"),
            "--duration",
            "1",
            "--concurrency",
            "1,4",
            "--requests",
            "20",
            "--results",
            str(tmp_path),
            "--work",
            str(tmp_path / "work"),
        ],
        tiny_data_root,
    )
    data = json.loads((tmp_path / "serve.json").read_text(encoding="utf-8"))
    for concurrency in ("1", "4"):
        for server in ("serve", "naive"):
            measured = data["results"][concurrency][server]
            assert measured["requests"] > 0 and measured["errors"] == 0, (concurrency, server, measured)
            assert measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"]
    for server in ("serve", "naive"):
        assert data["memory"][server]["requests"] == 20 and data["memory"][server]["rss_after_mb"] > 0
    assert "| 4 | serve |" in result.stdout and "vs naive" in result.stdout


def test_bench_corpus_runs_one_and_two_processes(tiny_run: Path, tiny_data_root: Path, tmp_path: Path):
    result = bench(
        "bench.corpus",
        ["--checkpoint", str(tiny_run / "model"), "--passes", "1", "--limit", "30", "--results", str(tmp_path)],
        tiny_data_root,
    )
    data = json.loads((tmp_path / "corpus.json").read_text(encoding="utf-8"))
    assert data["documents"] == 3
    for row in ("1 process", "2 processes"):
        [summary] = data["passes"][row]
        assert summary["documents"]["tagged"] == 3 and summary["documents_per_second"] > 0
    assert data["passes"]["2 processes"][0]["processes"] == 2 and len(data["ratios"]) == 1
    assert "2 processes / 1 process:" in result.stdout
