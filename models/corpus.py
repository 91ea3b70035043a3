"""Tag a corpus in one or many processes, resumably: every input document lands in the output exactly once.

    python -m models.corpus --checkpoint DIR --input PATH... --output OUTDIR
    accelerate launch [--num_processes N] -m models.corpus --checkpoint DIR --input PATH... --output OUTDIR

Input: .jsonl files of {"id": ..., "text": ...} lines, other files (.txt) one document each with its path as id,
folders for the .jsonl and .txt files under them. Output, in OUTDIR:

- part-RRRRR-of-NNNNN.jsonl: one shard per process, a line per document, the records of `python -m models`
  (models/records.py): {"id", "text", "entities": [...], "events": [...], "arguments": [...]};
- errors.jsonl: every line that is not a document ({"file", "line", "error"}; "id" where it has one), and every
  document the tagger failed on, in input order (written at the end; errors-*.part meanwhile);
- summary.json: documents tagged, failed, words, spans per label, time; also printed.

Line k of the inputs (over all files in order; a .txt file is one line) belongs to process k mod N. Every
process reads every line (the duplicate id check needs all ids) but parses only its own in full. Each process
appends to its own shard and, every --commit-every seconds, fsyncs the shard and then replaces
progress-RRRRR-of-NNNNN.json (the line it has done up to, the shard's committed length, its counts) in one
atomic rename. Killed anywhere, the same command truncates each shard to its committed length and goes on after
the committed line, so no document is lost or written twice. job.json pins the inputs and the number of
processes a folder was started with; run the same command to finish it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import heapq
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.__main__ import InputError, looks_like_cp1256, read_text
from models.precision import PRECISIONS
from models.records import json_bytes, json_type, to_record
from models.text import decode_utf8

JOB_FILE, SUMMARY_FILE, ERRORS_FILE = "job.json", "summary.json", "errors.jsonl"


class UserError(ValueError):
    """A mistake in the command or the output folder: one line, exit 2."""


# ------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Unit:
    """One line of the inputs: a JSONL line (raw bytes) or a whole other file (raw None, read by its owner)."""

    position: int  # over all inputs, in order: decides which process owns it
    file: str
    line: int
    raw: bytes | None


def input_files(paths: list[Path]) -> list[Path]:
    """The files to read, in order: each path given, a folder replaced by its .jsonl and .txt files (sorted)."""
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(file for file in path.rglob("*") if file.suffix in (".jsonl", ".txt") and file.is_file())
            if not found:
                raise UserError(f"{path}: a folder without .jsonl or .txt files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file")
    return files


def read_units(files: list[Path]) -> Iterator[tuple[Unit, int]]:
    """Every unit of the inputs, streamed, with the input bytes read so far."""
    position, consumed = 0, 0
    for path in files:
        if path.suffix != ".jsonl":
            consumed += path.stat().st_size
            yield Unit(position, str(path), 1, None), consumed
            position += 1
            continue
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):  # binary: lines end at b"\n" only, as JSONL's do
                consumed += len(raw)
                yield Unit(position, str(path), number, raw), consumed
                position += 1


# {"id": first, the usual layout: the id without parsing the whole line
_LEADING_ID = re.compile(
    rb'[ \t\r\n]*\{[ \t\r\n]*"id"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*))'
    rb"[ \t\r\n]*[,}]"
)


def valid_id(value) -> bool:
    return (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))


def declared_id(unit: Unit):
    """The id a unit claims, or None. Every process computes it for every line, the owner included, and the first
    line to claim an id keeps it; a function of the line alone, so which line is a duplicate does not depend on
    the number of processes. Claims are read cheaply where the id comes first, else from the whole line."""
    if unit.raw is None:
        return unit.file
    match = _LEADING_ID.match(unit.raw)
    if match:
        try:
            return json.loads(match.group(1))
        except ValueError:  # a bad escape or bad UTF-8 inside the id: the whole line decides
            pass
    try:
        record = json.loads(unit.raw)
    except (ValueError, RecursionError):
        return None
    value = record.get("id") if isinstance(record, dict) else None
    return value if valid_id(value) else None


class BadLine(Exception):
    pass


def parse_unit(unit: Unit, claimed) -> tuple[object, str] | None:
    """(id, text) of a unit, None for a blank line; BadLine says why a line is not a document."""
    if unit.raw is None:
        try:
            return unit.file, read_text(Path(unit.file))  # the command line's reading, its UTF-8 message included
        except InputError as err:
            raise BadLine(str(err)) from None
    try:
        line = decode_utf8(unit.raw)
    except UnicodeDecodeError as err:
        hint = (
            " (Arabic text saved as Windows-1256? convert the file: iconv -f cp1256 -t utf-8)"
            if looks_like_cp1256(unit.raw, err.start)
            else ""
        )
        raise BadLine(f"not UTF-8 at byte offset {err.start} of the line{hint}") from None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise BadLine(f"invalid JSON: {err.msg} at column {err.colno}") from None
    except RecursionError:
        raise BadLine("invalid JSON: nested too deeply") from None
    if not isinstance(record, dict):
        raise BadLine(f'expected an object with "id" and "text", got {json_type(record)}')
    if "id" not in record:
        raise BadLine('no "id" field')
    if not valid_id(record["id"]):
        raise BadLine(f'"id" must be a non-empty string or an integer, got {json_type(record["id"])}')
    if "text" not in record:
        raise BadLine('no "text" field')
    if not isinstance(record["text"], str):
        raise BadLine(f'"text" must be a string, got {json_type(record["text"])}')
    if json.dumps(record["id"]) != json.dumps(claimed):
        raise BadLine('"id" appears more than once in the line')
    return record["id"], record["text"]


def id_key(value) -> int:
    """64 bits of the id (a string and a number that print alike are different ids); never 0, the empty slot."""
    digest = hashlib.blake2b(json.dumps(value).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class SeenIds:
    """The ids claimed so far, as 64-bit hashes in one numpy array (open addressing, at most half full): 16 to 32
    bytes per document however long its id, where a Python set of the ids would take 100 and more."""

    def __init__(self, capacity: int = 1 << 16):
        self._table = np.zeros(capacity, dtype=np.uint64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: int) -> bool:
        """Whether the key is new (it is in the set after)."""
        table, mask = self._table, len(self._table) - 1
        slot = key & mask
        while True:
            value = int(table[slot])
            if value == 0:
                break
            if value == key:
                return False
            slot = (slot + 1) & mask
        table[slot] = key
        self._count += 1
        if 2 * self._count > len(table):
            keys = table[table != 0].tolist()
            self._table, self._count = np.zeros(2 * len(table), dtype=np.uint64), 0
            for old in keys:
                self.add(old)
        return True


# ------------------------------------------------------------------------------------------- state


def shard_name(process: int, processes: int, kind: str, suffix: str) -> str:
    return f"{kind}-{process:05d}-of-{processes:05d}{suffix}"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace path with data: readers see the old file or the new one, and after a crash the new one or none
    of it. The temporary name is the writer's own (pid), so processes writing the same file do not mix."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself
    finally:
        os.close(directory)


def describe_job(files: list[Path], processes: int, checkpoint: Path) -> dict:
    """What a folder's output depends on: a rerun must match it to continue."""
    inputs = []
    for path in files:
        stat = path.stat()
        inputs.append({"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return {"processes": processes, "checkpoint": str(checkpoint.resolve()), "inputs": inputs}


def check_job(out: Path, job: dict) -> bool:
    """Whether the folder already holds this job (False: a new folder); UserError if it holds another."""
    path = out / JOB_FILE
    if not path.is_file():
        return False
    before = json.loads(path.read_text(encoding="utf-8"))
    if before != job:
        changed = [key for key in job if before.get(key) != job[key]]
        raise UserError(
            f"{out} holds a job started with other {' and '.join(changed)} (see {path}): rerun it "
            f"with the same command and number of processes, or give another --output"
        )
    return True


def start_job(out: Path, job: dict) -> None:
    """Pin what the output will depend on. Every process writes the same file (each through its own temporary)."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / JOB_FILE, json.dumps(job, ensure_ascii=False, indent=1).encode("utf-8"))


@dataclass
class Counts:
    tagged: int = 0
    failed: int = 0  # lines that are not documents, and documents the tagger failed on
    blank: int = 0
    words: int = 0  # whitespace-separated, as the benchmarks count them
    spans: dict[str, dict[str, int]] = field(default_factory=dict)  # layer -> label -> spans
    arguments: dict[str, int] = field(default_factory=dict)  # role -> arguments
    seconds: float = 0.0  # tagging time of this process over every run

    def add(self, other: Counts) -> None:
        for name in ("tagged", "failed", "blank", "words", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for layer, labels in other.spans.items():
            merged = Counter(self.spans.get(layer, {}))
            merged.update(labels)
            self.spans[layer] = dict(merged)
        merged = Counter(self.arguments)
        merged.update(other.arguments)
        self.arguments = dict(merged)


@dataclass
class Progress:
    position: int = 0  # every unit this process owns before it is in the shard or the errors
    shard_bytes: int = 0
    errors_bytes: int = 0
    done: bool = False
    counts: Counts = field(default_factory=Counts)

    @classmethod
    def read(cls, path: Path) -> Progress:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["position"], data["shard_bytes"], data["errors_bytes"], data["done"], Counts(**data["counts"]))

    def to_json(self) -> bytes:
        counts = self.counts
        return json.dumps(
            {
                "position": self.position,
                "shard_bytes": self.shard_bytes,
                "errors_bytes": self.errors_bytes,
                "done": self.done,
                "counts": {**counts.__dict__},
            },
            ensure_ascii=False,
        ).encode("utf-8")


class Appender:
    """A file appended to, cut back to its committed length on opening."""

    def __init__(self, path: Path, committed: int):
        size = path.stat().st_size if path.exists() else 0
        if size < committed:
            raise UserError(
                f"{path} is shorter ({size:,} bytes) than its committed {committed:,}: the output folder "
                f"was changed by something else; start again in another --output"
            )
        self.handle = path.open("ab")
        self.handle.truncate(committed)
        self.bytes = committed

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.bytes += len(data)

    def sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


# ------------------------------------------------------------------------------------------- one process's share


class Worker:
    def __init__(
        self, tagger, out: Path, process: int, processes: int, batch_docs: int, batch_chars: int, commit_every: float
    ):
        self.tagger, self.out = tagger, out
        self.process, self.processes = process, processes
        self.batch_docs, self.batch_chars, self.commit_every = batch_docs, batch_chars, commit_every
        self.layers, self.arguments = list(tagger.layers), bool(tagger.roles)
        self.progress_path = out / shard_name(process, processes, "progress", ".json")
        self.progress = Progress.read(self.progress_path)
        self.run = Counts()  # this run's share of progress.counts
        self.shard = Appender(out / shard_name(process, processes, "part", ".jsonl"), self.progress.shard_bytes)
        self.errors = Appender(out / shard_name(process, processes, "errors", ".part"), self.progress.errors_bytes)
        self.pending: list[tuple[Unit, object, str]] = []
        self.pending_chars = 0
        self.handled = self.progress.position  # every owned unit before this is written (or pending)
        self.last_commit = time.monotonic()

    def tag_share(self, files: list[Path], bar=None) -> None:
        """Tag the units this process owns from the committed position on, committing as it goes."""
        if self.progress.done:
            self.shard.close()
            self.errors.close()
            return
        seen = SeenIds()
        for unit, consumed in read_units(files):
            claimed = declared_id(unit)
            first = claimed is None or seen.add(id_key(claimed))
            if bar is not None:
                bar.update(consumed - bar.n)
            if unit.position % self.processes != self.process or unit.position < self.progress.position:
                continue
            self.handled = unit.position + 1
            try:
                parsed = parse_unit(unit, claimed)
                if parsed is not None and not first:
                    raise BadLine(
                        f"duplicate id {json.dumps(claimed, ensure_ascii=False)}: an earlier line has it "
                        "(the first line with an id keeps it, even one that fails)"
                    )
            except BadLine as err:
                self.error(unit, str(err), claimed)
                parsed = None
            else:
                if parsed is None:
                    self.run.blank += 1
            if parsed is not None:
                self.pending.append((unit, *parsed))
                self.pending_chars += len(parsed[1])
                if len(self.pending) >= self.batch_docs or self.pending_chars >= self.batch_chars:
                    self.flush()
            if not self.pending and time.monotonic() - self.last_commit >= self.commit_every:
                self.commit(done=False)
            if bar is not None and self.run.tagged:
                bar.set_postfix_str(
                    f"{self.run.tagged / max(self.run.seconds, 1e-9):,.1f} documents/s "
                    f"on this process of {self.processes}",
                    refresh=False,
                )
        self.flush()
        self.commit(done=True)
        self.shard.close()
        self.errors.close()

    def error(self, unit: Unit, reason: str, document_id=None) -> None:
        record = {"file": unit.file, "line": unit.line, "error": reason}
        if document_id is not None:
            record["id"] = document_id
        self.errors.write(json_bytes(record) + b"\n")
        self.run.failed += 1

    def flush(self) -> None:
        if not self.pending:
            return
        started = time.perf_counter()
        texts = [text for _, _, text in self.pending]
        try:
            docs = self.tagger.tag(texts)
        except Exception:  # find the document at fault; the others are tagged
            docs = []
            for text in texts:
                try:
                    docs.append(self.tagger.tag([text])[0])
                except Exception as err:  # recorded in errors.jsonl, the run goes on
                    docs.append(err)
        for (unit, document_id, text), doc in zip(self.pending, docs):
            if isinstance(doc, Exception):
                self.error(unit, f"tagging failed: {type(doc).__name__}: {doc}", document_id)
                continue
            self.shard.write(json_bytes(to_record(document_id, doc, self.layers, self.arguments)) + b"\n")
            self.run.tagged += 1
            self.run.words += len(text.split())
            for span in doc.spans:
                labels = self.run.spans.setdefault(span.layer, {})
                labels[span.label] = labels.get(span.label, 0) + 1
            for argument in doc.arguments:
                self.run.arguments[argument.role] = self.run.arguments.get(argument.role, 0) + 1
        self.run.seconds += time.perf_counter() - started
        self.pending, self.pending_chars = [], 0
        if time.monotonic() - self.last_commit >= self.commit_every:
            self.commit(done=False)

    def commit(self, done: bool) -> None:
        """Make everything written so far durable, then say so: the data before the progress that counts it."""
        self.shard.sync()
        self.errors.sync()
        counts = copy.deepcopy(self.progress.counts)  # stays what earlier runs did: this run's is added anew
        counts.add(self.run)
        committed = Progress(self.handled, self.shard.bytes, self.errors.bytes, done, counts)
        write_atomically(self.progress_path, committed.to_json())
        self.last_commit = time.monotonic()


# ------------------------------------------------------------------------------------------- the end


def read_all(out: Path, processes: int) -> list[Progress]:
    return [Progress.read(out / shard_name(process, processes, "progress", ".json")) for process in range(processes)]


def wait_for_all(out: Path, processes: int, poll_s: float = 1.0) -> list[Progress]:
    """Every process's progress once all are done. Polls files rather than a collective barrier: a process that
    finishes early waits any time, with no timeout to outlast; if another dies, the launcher stops this one."""
    while True:
        progress = read_all(out, processes)
        if all(item.done for item in progress):
            return progress
        time.sleep(poll_s)


def merge_errors(out: Path, processes: int, files: list[Path]) -> int:
    """errors.jsonl from every process's part, in input order, streamed. Written whole or not at all."""
    order = {str(path): index for index, path in enumerate(files)}

    def records(path: Path):
        with path.open("rb") as handle:
            for line in handle:
                record = json.loads(line)
                yield (order.get(record["file"], len(order)), record["line"]), line

    parts = [out / shard_name(process, processes, "errors", ".part") for process in range(processes)]
    temporary = out / f"{ERRORS_FILE}.{os.getpid()}.tmp"
    count = 0
    with temporary.open("wb") as handle:
        for _, line in heapq.merge(*(records(path) for path in parts if path.exists())):
            handle.write(line)
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, out / ERRORS_FILE)
    return count


def summarise(
    before: list[Progress],
    after: list[Progress],
    seconds: float,
    out: Path,
    load_seconds: float = 0.0,
    threads: int | None = None,
) -> dict:
    """The job's counts (every run), this run's share (after - before) and its speed; also into summary.json."""
    total, earlier = Counts(), Counts()
    for item in after:
        total.add(item.counts)
    for item in before:
        earlier.add(item.counts)
    tagged, words = total.tagged - earlier.tagged, total.words - earlier.words
    summary = {
        "documents": {
            "tagged": total.tagged,
            "tagged_this_run": tagged,
            "skipped": earlier.tagged,
            "failed": total.failed,
            "blank_lines": total.blank,
        },
        "words": total.words,
        "spans": total.spans,
        "arguments": total.arguments,
        "processes": len(after),
        "seconds": round(seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "threads_per_process": threads,
        "documents_per_second": round(tagged / seconds, 2) if seconds else None,
        "words_per_second": round(words / seconds, 1) if seconds else None,
        "tagging_seconds_per_process": [round(item.counts.seconds, 2) for item in after],
    }
    write_atomically(out / SUMMARY_FILE, json.dumps(summary, ensure_ascii=False, indent=1).encode("utf-8"))
    return summary


def summary_text(summary: dict, out: Path) -> str:
    documents = summary["documents"]
    lines = [
        f"{documents['tagged']:,} documents tagged ({documents['tagged_this_run']:,} in this run, "
        f"{documents['skipped']:,} skipped: tagged by an earlier run), {documents['failed']:,} failed "
        f"(listed in {out / ERRORS_FILE}), {documents['blank_lines']:,} blank lines; {summary['words']:,} words",
        f"this run: {summary['seconds']:,.1f} s (after {summary['load_seconds']:,.1f} s loading) over "
        f"{summary['processes']} process{'es' if summary['processes'] > 1 else ''}, "
        f"{summary['documents_per_second'] or 0:,.1f} documents/s, "
        f"{summary['words_per_second'] or 0:,.0f} words/s",
    ]
    for layer, labels in summary["spans"].items():
        lines.append(
            f"{layer}: "
            + ", ".join(f"{label} {count:,}" for label, count in sorted(labels.items(), key=lambda item: -item[1]))
        )
    if summary["arguments"]:
        lines.append(
            "arguments: " + ", ".join(f"{role} {count:,}" for role, count in sorted(summary["arguments"].items()))
        )
    lines.append(f"written: {out}/part-*.jsonl, {out / ERRORS_FILE}, {out / SUMMARY_FILE}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.corpus",
        description=__doc__.split("\n\n")[0],
        epilog="Under `accelerate launch` the processes split the input; run the same "
        "command again after any interruption to finish the job.",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a checkpoint folder, e.g. runs/e5-small-offline/model"
    )
    parser.add_argument(
        "--input",
        required=True,
        nargs="+",
        type=Path,
        help='.jsonl files of {"id", "text"} lines, other files (.txt) one document each '
        "(the path is its id), or folders of them",
    )
    parser.add_argument("--output", required=True, type=Path, help="the output folder (created; reused to resume)")
    parser.add_argument("--batch-docs", type=int, default=64, help="documents per Tagger.tag call (default 64)")
    parser.add_argument(
        "--batch-chars",
        type=int,
        default=500_000,
        help="characters per Tagger.tag call at most, so long documents batch fewer (default 500,000)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="windows per forward pass (default 32; more on a GPU)"
    )
    parser.add_argument(
        "--commit-every",
        type=float,
        default=30.0,
        help="seconds between commits: what an interruption can cost (default 30)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="as `python -m models` (default auto)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a progress bar on the first process (default on)",
    )
    args = parser.parse_args(argv)
    import torch
    from accelerate import PartialState

    # cpu: without a GPU, join the process group over gloo (else accelerate sees one process in each)
    state = PartialState(cpu=not torch.cuda.is_available())
    process, processes = state.process_index, state.num_processes
    loading = time.perf_counter()
    try:
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != processes:  # each would take every line: the shards would hold documents twice
            raise UserError(f"launched as {launched} processes, but accelerate sees {processes}")
        for name in ("batch_docs", "batch_chars"):
            if getattr(args, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        files = input_files(args.input)
        job = describe_job(files, processes, args.checkpoint)
        started_before = check_job(args.output, job)  # before the model loads: a wrong command fails at once
        from models.tagger import Tagger

        tagger = Tagger.load(
            args.checkpoint, device=str(state.device), batch_size=args.batch_size, precision=args.precision
        )
        if not started_before:  # only once the command has proved itself: a typo does not pin a folder
            start_job(args.output, job)
        worker = Worker(tagger, args.output, process, processes, args.batch_docs, args.batch_chars, args.commit_every)
    except (ValueError, FileNotFoundError) as err:  # UserError, CheckpointError, a bad --batch-size
        # every process finds the same mistake: one says it
        if state.is_main_process:
            print(f"error: {err}", file=sys.stderr)
        return 2
    # what was done before this run, read while no process writes: the summary tells this run's work apart
    state.wait_for_everyone()
    before = read_all(args.output, processes) if state.is_main_process else []
    state.wait_for_everyone()
    started = time.perf_counter()  # the speed is the tagging's, the model's loading apart
    bar = None
    if args.progress and state.is_main_process and not worker.progress.done:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(path.stat().st_size for path in files),
            unit="B",
            unit_scale=True,
            desc="input read",
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )
    worker.tag_share(files, bar)
    if bar is not None:
        bar.close()
    if not state.is_main_process:
        return 0
    after = wait_for_all(args.output, processes)
    merge_errors(args.output, processes, files)
    summary = summarise(
        before,
        after,
        time.perf_counter() - started,
        args.output,
        load_seconds=started - loading,
        threads=torch.get_num_threads(),
    )
    print(summary_text(summary, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
