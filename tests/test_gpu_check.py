"""The GPU check (bench/gpu_check.py, `make gpu-check`): its mechanics on the CPU, with tiny shapes (issue 23).

No GPU has been available to this project: the check is ready for the first one, and this runs everything it
does (the Hub-shaped stand-in, both trainings through accelerate launch, the Tagger's speed, the table) on
the CPU in --tiny mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_make

from bench import gpu_check
from corpora.reader import load_split

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_reference_is_the_one_in_docs_results():
    """The CPU figures the GPU run is set against are docs/RESULTS.md's default rows, not a copy that drifted."""
    results = (ROOT / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    for layer, runs in gpu_check.CPU_RUNS.items():
        for value in (*runs, gpu_check.CPU_MEANS[layer]):
            assert f"{value:.2f}" in results, (layer, value)
        assert min(runs) <= gpu_check.CPU_MEANS[layer] <= max(runs)


def test_agreement_is_the_cpu_range_widened_by_the_bf16_spread():
    inside = {layer: max(runs) + gpu_check.BF16_SPREAD for layer, runs in gpu_check.CPU_RUNS.items()}
    assert all(gpu_check.agreement(inside).values())
    below = {**inside, "events": min(gpu_check.CPU_RUNS["events"]) - gpu_check.BF16_SPREAD - 0.01}
    assert gpu_check.agreement(below) == {"entities": True, "events": False, "arguments": True}


def test_without_a_gpu_the_full_check_says_so(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main([]) == 2
    assert "--tiny" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_check_runs_everything_on_the_cpu(tiny_data_root: Path, tmp_path: Path):
    out = tmp_path / "gpu-check"
    result = run_make("gpu-check", f"ARGS=--tiny --out {out}", data_root=tiny_data_root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 12, "one table: header, rule and ten rows"
    assert (out / "gpu-check.md").read_text(encoding="utf-8").strip().splitlines() == table
    rows = dict((cell.strip() for cell in line.strip("| ").split(" | ")) for line in table[2:])
    assert rows["GPU"] == "none (CPU)"
    assert float(next(value for key, value in rows.items() if key.endswith("samples/s"))) > 0

    data = json.loads((out / "gpu-check.json").read_text(encoding="utf-8"))
    test_words = sum(len(sentence.words) for sentence in load_split("anercorp-events:test", tiny_data_root))
    assert data["tiny"] and data["tagger"]["words"] == test_words and data["tagger"]["words_per_second"] > 0
    assert data["standin"]["memory"]["peak_rss_mb"] > 0
    assert set(data["offline"]["test"]) == {"entities", "events", "arguments"}
    assert set(data["agrees"]) == {"entities", "events", "arguments"}

    # the stand-in is shaped like the Hub's AraBERT: vocab.txt, no tokenizer.json; both runs went through
    # accelerate launch into a checkpoint
    encoder = out / "arabert-standin-encoder"
    assert sorted(path.name for path in encoder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    vocabulary = (encoder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert (
        len(vocabulary)
        == gpu_check.TINY["vocab_size"]
        == json.loads((encoder / "config.json").read_text())["vocab_size"]
    )
    for run in ("arabert-standin", "e5-small-offline"):
        assert (out / run / "model" / "tagger.json").is_file()
        assert "precision bf16" in (out / run / "train.log").read_text(encoding="utf-8")
    info = json.loads((out / "arabert-standin" / "model" / "tagger.json").read_text(encoding="utf-8"))
    assert info["provenance"]["encoder"] == str(encoder) and info["settings"]["normalisation"] == "arabert_v02"
