"""Scale-out mechanics on the CPU: two processes over gloo, SIGKILL and --resume, the run-folder rules, and the
preflight errors."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from corpora.reader import Sentence
from models.checkpoint import read_info
from train.config import load_config
from train.features import WindowOrigin
from train.run import GpuUnavailable, OutOfMemory, RunExists, _is_complete, dev_metrics, run

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "tiny.yaml"


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "train", "--config", str(TINY), *args]


def subprocess_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_end_with_one_model(tiny_data_root: Path, tmp_path: Path):
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [
        str(accelerate),
        "launch",
        "--config_file",
        str(ROOT / "configs/accelerate/cpu-2-processes.yaml"),
        "--main_process_port",
        str(free_port()),
        "-m",
        "train",
        "--config",
        str(TINY),
        f"data_root={tiny_data_root}",
        f"output_dir={tmp_path}",
        "training.epochs=3",
    ]
    result = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "tiny" / "train.log").read_text(encoding="utf-8")

    digests = re.findall(r"\[rank (\d)/2\] train INFO weights sha256 (\w+), identical on all 2 processes", log)
    assert sorted(rank for rank, _ in digests) == ["0", "1"], "both ranks report their weights"
    assert len({digest for _, digest in digests}) == 1

    assert len(re.findall(r"\[rank 0/2\] train INFO exported ", log)) == 1
    assert "[rank 1/2] train INFO exported" not in log, "only the main process writes the checkpoint"
    assert (tmp_path / "tiny" / "model" / "model.safetensors").is_file()
    assert "effective batch 16 = 8 per device x 1 accumulation steps x 2 processes" in log

    dev_windows = int(re.search(r"(\d+) dev windows", log).group(1))
    scored = re.findall(r"\[rank 0/2\] train INFO dev F1 over all (\d+) dev windows, each scored once", log)
    assert scored == [str(dev_windows)] * 3, "every epoch scores the whole dev set once, gathered from both ranks"

    rows = list(csv.DictReader((tmp_path / "tiny" / "log.csv").open(encoding="utf-8")))
    losses = [float(row["loss"]) for row in rows if row.get("loss")]
    assert losses[-1] < losses[0]
    assert sum(1 for row in rows if row.get("eval_entities_micro_f1")) == 3, (
        "dev F1 logged once per epoch, not per rank"
    )


def test_dev_metrics_refuse_lost_or_repeated_windows():
    origins = [WindowOrigin(sentence, [0], [1]) for sentence in range(3)]
    sentences = [Sentence(("w",), {"entities": ("O",)}) for _ in range(3)]
    compute = dev_metrics(sentences, origins, {"entities": ["O", "B-PERS", "I-PERS"]})

    def prediction(windows):
        predicted = (np.zeros((len(windows), 3), dtype=np.int64),)
        return type("P", (), {"predictions": predicted, "label_ids": (None, np.array(windows))})()

    assert compute(prediction([2, 0, 1])) == {"entities_micro_f1": 0.0, "entities_strict_micro_f1": 0.0, "mean_f1": 0.0}
    with pytest.raises(RuntimeError, match="cover 2 of 3 windows, 1 of them more than once"):
        compute(prediction([0, 0, 1]))
    with pytest.raises(RuntimeError, match="cover 2 of 3 windows"):
        compute(prediction([0, 1]))


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights(tiny_data_root: Path, tmp_path: Path):
    settings = [
        f"data_root={tiny_data_root}",
        f"output_dir={tmp_path}",
        "training.epochs=4",
        "training.checkpoint_every_steps=4",
        "training.logging_steps=2",
    ]
    killed = subprocess.Popen(
        train_command(*settings, "name=killed"),
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first_checkpoint = tmp_path / "killed" / "trainer" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 240
    while not _is_complete(first_checkpoint):  # the Trainer may be midway through writing it
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "model").exists(), "killed before it finished"
    state = json.loads(first_checkpoint.read_text())
    steps_per_epoch = state["max_steps"] // 4
    assert 4 % steps_per_epoch != 0, "the kill lands mid-epoch"

    config = load_config(TINY, [*settings, "name=killed"])
    with pytest.raises(RunExists, match="unfinished run .*--resume"):
        run(config)
    with pytest.raises(RunExists, match=r"\['training.epochs'\] differ"):
        run(load_config(TINY, [*settings, "name=killed", "training.epochs=5"]), resume=True)

    resumed = subprocess.run(
        train_command(*settings, "name=killed", "--resume"),
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in (tmp_path / "killed" / "train.log").read_text(encoding="utf-8")
    straight = subprocess.run(
        train_command(*settings, "name=straight"),
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    for weights in ("model.safetensors", "heads.safetensors"):
        interrupted, uninterrupted = (load_file(tmp_path / name / "model" / weights) for name in ("killed", "straight"))
        assert interrupted.keys() == uninterrupted.keys()
        assert all(torch.equal(interrupted[key], uninterrupted[key]) for key in interrupted), weights
    metrics = [read_info(tmp_path / name / "model").provenance["metrics"] for name in ("killed", "straight")]
    assert metrics[0] == metrics[1]
    rows = list(csv.DictReader((tmp_path / "killed" / "log.csv").open(encoding="utf-8")))
    loss_steps = [int(row["step"]) for row in rows if row.get("loss")]
    assert loss_steps == list(range(2, loss_steps[-1] + 1, 2)), "rows before the kill kept, none logged twice"

    with pytest.raises(RunExists, match="finished run: nothing to resume"):
        run(config, resume=True)


def test_resume_without_a_checkpoint_says_so(tiny_data_root: Path, tmp_path: Path):
    config = load_config(TINY, [f"data_root={tiny_data_root}", f"output_dir={tmp_path}"])
    with pytest.raises(RunExists, match="no resumable checkpoint"):
        run(config, resume=True)


def test_gpu_config_on_a_machine_without_gpu(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = load_config(ROOT / "configs" / "arabertv02.yaml", [f"output_dir={tmp_path}"])
    with pytest.raises(GpuUnavailable) as caught:
        run(config)
    message = str(caught.value)
    assert "training.device=cpu" in message and "make demo" in message
    assert not (tmp_path / "arabertv02").exists(), "nothing written before the preflight passes"


def test_out_of_memory_names_the_keys_to_change(monkeypatch, tiny_data_root: Path, tmp_path: Path):
    from transformers import Trainer

    def exhausted(self, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", exhausted)
    config = load_config(TINY, [f"data_root={tiny_data_root}", f"output_dir={tmp_path}", "training.batch_size=8"])
    with pytest.raises(OutOfMemory) as caught:
        run(config)
    message = str(caught.value)
    for key in ("training.batch_size=8", "training.gradient_accumulation_steps", "max_length", "effective batch (8)"):
        assert key in message


def test_a_checkpoint_whose_trainer_state_was_cut_short_is_not_resumed_from(tmp_path: Path):
    from train.run import last_checkpoint

    for step, state in ((4, '{"global_step": 4}'), (8, '{"global_st')):  # killed while writing step 8's
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(state, encoding="utf-8")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
