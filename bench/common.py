"""What the benchmarks share: child processes (one per measured row), passes interleaved across rows, peak RSS,
the machine and its load, Markdown tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from models.errors import ERROR_PREFIX, USER_ERROR_STATUS, UserError

ROOT = Path(__file__).parents[1]
OUT = ROOT / "runs" / "bench"
DEFAULT_CHECKPOINT = ROOT / "runs" / "e5-small-offline" / "model"  # what `make demo` trains
RESULT_PREFIX = "RESULT "
T = TypeVar("T")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    VmHWM (Linux) belongs to the process's own address space. ru_maxrss is the fallback elsewhere, but on
    Linux it survives exec: a child started by a parent that once held 2.6 GB reports at least 2.6 GB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def emit(result: dict) -> None:
    """A child's answer to its parent: one line on stdout."""
    print(RESULT_PREFIX + json.dumps(result, ensure_ascii=False), flush=True)


def raise_user_error(child: subprocess.CompletedProcess) -> None:
    """Raise here the user error a child command line stopped on (a data folder missing, a bad checkpoint): the
    user's mistake, to be said in one line, not a failed child's traceback."""
    said = child.stderr.strip().splitlines()
    if child.returncode == USER_ERROR_STATUS and said and said[-1].startswith(ERROR_PREFIX):
        raise UserError(said[-1][len(ERROR_PREFIX) :])


def run_child(module: str, args: list[str]) -> dict:
    """Run `python -m module args` (a child that ends with emit(...)) and return what it emitted."""
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True)
    raise_user_error(child)
    lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
    print(f"  {' '.join(args[:2])}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


class ServingChild:
    """`python -m module args` kept running to answer requests, so that one row's model stays loaded (and its peak
    RSS its own) while the passes of all rows are interleaved. The child emit()s once when ready, then once per
    request line it reads (serve()); the first answer is `ready`."""

    def __init__(self, module: str, args: list[str]):
        self.name = f"{module} {' '.join(args[:2])}"
        self.stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # a pipe nobody reads could fill and block
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            encoding="utf-8",
        )
        self.ready = self._answer()

    def ask(self, request: str) -> dict:
        try:
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the child has ended: _answer says how
        return self._answer()

    def _answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        self.process.wait()
        self.stderr.seek(0)
        raise RuntimeError(
            f"{self.name} ended (exit {self.process.returncode}) without answering:\n{self.stderr.read()[-4000:]}"
        )

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # serve() ends at the end of its input
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


def serve(ready: dict, answers: dict[str, Callable[[], dict]]) -> None:
    """A ServingChild's side: emit `ready`, then answer each request line with answers[request]()."""
    emit(ready)
    for line in sys.stdin:
        emit(answers[line.strip()]())


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def interleaved_passes(passes_of: dict[str, Callable[[], T]], passes: int) -> dict[str, list[T]]:
    """What `passes` passes of each row returned (passes_of[row]() runs one: its seconds, or its measurements),
    taken in rounds: every row once per round, in reverse order every other round. A loaded minute on a shared
    machine then falls on all rows alike, and no row always runs first or right after another."""
    results: dict[str, list[T]] = {row: [] for row in passes_of}
    for index in range(passes):
        for row in list(passes_of) if index % 2 == 0 else list(passes_of)[::-1]:
            results[row].append(passes_of[row]())
    return results


def speed_ratios(seconds: dict[str, list[float]], row: str, baseline: str) -> list[float]:
    """Per round, the row's speed over the baseline's: how many times faster the row ran than the baseline's pass
    of the same round."""
    return [base / own for own, base in zip(seconds[row], seconds[baseline], strict=True)]


def load_average() -> float:
    """The machine's load over the last minute (runnable processes; above the core count, rows wait for a core)."""
    return os.getloadavg()[0]


def command_line(module: str, argv: list[str] | None) -> str:
    """How this benchmark was called, to print above its table."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def check_checkpoint(path: Path) -> Path:
    if not (Path(path) / "tagger.json").is_file():
        hint = " (train it with `make demo`, or pass --checkpoint)" if Path(path) == DEFAULT_CHECKPOINT else ""
        raise UserError(f"{path} is not a tagger checkpoint{hint}")
    return Path(path)


def machine() -> str:
    """CPU model, cores and library versions: the line the README quotes under a table."""
    import torch
    import transformers

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}, Python {platform.python_version()}, {platform.system()}"
    )


def markdown_table(headers: list[str], rows: list[list[object]], right: set[int] | None = None) -> str:
    """Columns in `right` (by index) align right: the numbers."""
    right = right or set()
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if index in right else "---" for index in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, text: str, data: dict, folder: Path | None = None) -> Path:
    """<folder>/<name>.md (the table as printed) and <name>.json (everything measured); folder: runs/bench, or
    another one that keeps a smoke run from replacing the measured results."""
    folder = folder or OUT  # read when called, so that a test can point OUT elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    path = folder / f"{name}.md"
    path.write_text(text + "\n", encoding="utf-8")
    return path
