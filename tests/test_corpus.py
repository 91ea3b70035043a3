"""The corpus tagger (models/corpus.py): the records and errors of one process, exactly once after a SIGKILL of one
of two processes, a crash between writing and committing, the output folder's rules, and a million lines
streamed in flat memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

# roles_checkpoint, a fixture: a checkpoint that finds spans and arguments
from test_argument_outputs import roles_checkpoint  # noqa: F401
from test_distributed import ROOT, free_port, subprocess_env
from test_serve import same_spans

from models import Tagger
from models.corpus import Counts, Progress, SeenIds, Unit, Worker, declared_id, id_key, main, read_units
from models.records import to_record
from models.tagger import Doc

TEXTS = [
    "أعلن محمد في دمشق أن القوات استعادت السيطرة على مدينة دير الزور.\nوقال أحمد علي في بغداد",
    "وصل جورج بوش إلى القاهرة اليوم",
    "اجتماع الأمم المتحدة في ألمانيا",
    "هجوم على الجيش السوري في دمشق",
    "قال محمد إن كأس العالم في القاهرة",
    "",
    "👍🏽 قال\x00محمد",
    "الحرب العالمية " * 40,
]
# (line, the reason's beginning) of every line of BAD that is not a document
BAD = [
    b'{"id": "a1", "text": ',
    b'{"text": "no id"}',
    b'{"id": "a2"}',
    b'{"id": "a3", "text": 7}',
    b'{"id": true, "text": "x"}',
    b'{"id": "d0", "text": "a duplicate"}',
    b'["id", "text"]',
    '{"id": "a4", "text": "قال محمد"}'.encode("cp1256"),
    b'{"id": "a5", "text": "x", "id": "a6"}',
]
REASONS = [
    "invalid JSON",
    'no "id" field',
    'no "text" field',
    '"text" must be a string, got a number',
    '"id" must be a non-empty string or an integer, got a boolean',
    'duplicate id "d0"',
    'expected an object with "id" and "text", got an array',
    "not UTF-8 at byte offset 22 of the line (Arabic",
    '"id" appears more than once',
]


def write_jsonl(path: Path, documents: list[tuple[object, str]], bad: list[bytes] = (), every: int = 3) -> None:
    """Documents as JSONL lines, a bad line after every `every`-th document while they last, and a blank line."""
    lines, bad = [], list(bad)
    for index, (document_id, text) in enumerate(documents):
        lines.append(json.dumps({"id": document_id, "text": text}, ensure_ascii=False).encode("utf-8"))
        if index % every == every - 1 and bad:
            lines.append(bad.pop(0))
    lines.insert(2, b"  ")
    path.write_bytes(b"\n".join(lines) + b"\n")


def shard_records(out: Path) -> dict:
    """Every document of the output by id; fails on an id written twice."""
    records = {}
    for shard in sorted(out.glob("part-*.jsonl")):
        for line in shard.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert record["id"] not in records, f"{record['id']} written twice"
            records[record["id"]] = record
    return records


@pytest.fixture(scope="module")
def tagger(roles_checkpoint: Path) -> Tagger:  # noqa: F811
    return Tagger.load(roles_checkpoint, device="cpu", precision="fp32")


def test_one_process_tags_every_document_and_lists_every_bad_line(
    roles_checkpoint: Path,  # noqa: F811
    tagger: Tagger,
    tmp_path: Path,
    capsys,
):
    documents = [(f"d{index}", text) for index, text in enumerate(TEXTS)] + [(7, "رقم هوية عددي")]
    write_jsonl(tmp_path / "news.jsonl", documents, BAD, every=1)
    (tmp_path / "one.txt").write_text(TEXTS[1], encoding="utf-8")
    (tmp_path / "windows.txt").write_bytes("قال محمد في دمشق".encode("cp1256"))
    inputs = [tmp_path / "news.jsonl", tmp_path / "one.txt", tmp_path / "windows.txt"]
    out = tmp_path / "out"
    assert (
        main(
            [
                "--checkpoint",
                str(roles_checkpoint),
                "--input",
                *map(str, inputs),
                "--output",
                str(out),
                "--precision",
                "fp32",
                "--batch-docs",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )

    records = shard_records(out)
    documents.append((str(tmp_path / "one.txt"), TEXTS[1]))
    assert sorted(records, key=str) == sorted((document_id for document_id, _ in documents), key=str)
    docs = tagger.tag([text for _, text in documents])
    for (document_id, _), doc in zip(documents, docs):
        assert same_spans(records[document_id], to_record(document_id, doc, list(tagger.layers), arguments=True))
    assert sum(len(record["entities"]) for record in records.values()) and any(
        record["arguments"] for record in records.values()
    ), "the checkpoint finds spans and arguments to compare"

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [error["file"] for error in errors] == [str(inputs[0])] * len(BAD) + [str(inputs[2])]
    lines = (tmp_path / "news.jsonl").read_bytes().split(b"\n")
    for error, bad, reason in zip(errors, BAD, REASONS):
        assert lines[error["line"] - 1] == bad and error["error"].startswith(reason), error
    assert errors[-1]["line"] == 1 and "not UTF-8 at byte offset 0" in errors[-1]["error"]
    assert "iconv -f cp1256" in errors[-1]["error"], "the command line's Windows-1256 hint"

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["documents"] == {
        "tagged": len(documents),
        "tagged_this_run": len(documents),
        "skipped": 0,
        "failed": len(BAD) + 1,
        "blank_lines": 1,
    }
    assert summary["words"] == sum(len(text.split()) for _, text in documents)
    for layer in tagger.layers:
        assert summary["spans"][layer] == dict(Counter(span.label for doc in docs for span in doc.layer(layer)))
    assert summary["arguments"] == dict(Counter(argument.role for doc in docs for argument in doc.arguments))
    printed = capsys.readouterr().out
    assert f"{len(documents)} documents tagged" in printed and f"{len(BAD) + 1} failed" in printed

    # the same command again: nothing to do, nothing written twice
    assert (
        main(
            [
                "--checkpoint",
                str(roles_checkpoint),
                "--input",
                *map(str, inputs),
                "--output",
                str(out),
                "--precision",
                "fp32",
                "--no-progress",
            ]
        )
        == 0
    )
    assert shard_records(out).keys() == records.keys()
    again = json.loads((out / "summary.json").read_text(encoding="utf-8"))["documents"]
    assert again["tagged_this_run"] == 0 and again["skipped"] == len(documents)
    assert len((out / "errors.jsonl").read_text(encoding="utf-8").splitlines()) == len(errors)


def test_a_crash_between_writing_and_committing_is_undone(tiny_run: Path, tagger: Tagger, tmp_path: Path):
    documents = [(f"d{index}", TEXTS[index % len(TEXTS)]) for index in range(20)]
    write_jsonl(tmp_path / "in.jsonl", documents, BAD[:3])
    command = [
        "--checkpoint",
        str(tiny_run / "model"),
        "--input",
        str(tmp_path / "in.jsonl"),
        "--precision",
        "fp32",
        "--no-progress",
        "--batch-docs",
        "4",
    ]
    assert main([*command, "--output", str(tmp_path / "straight")]) == 0

    # what a process killed after its writes and before its commit leaves: committed progress up to line 11, more
    # lines in the shard and the errors part after the committed lengths
    out = tmp_path / "crashed"
    assert main([*command, "--output", str(out)]) == 0
    shard, errors = out / "part-00000-of-00001.jsonl", out / "errors-00000-of-00001.part"
    first = (tmp_path / "in.jsonl").read_bytes().split(b"\n")[:11]
    tagged = sum(line.startswith(b'{"id": "d') for line in first)
    failed = sum(1 for line in first if line.strip()) - tagged
    assert tagged and failed, "the committed part holds documents and errors"
    shard_lines, error_lines = shard.read_bytes().split(b"\n"), errors.read_bytes().split(b"\n")
    committed = Progress(
        position=len(first),
        shard_bytes=sum(len(line) + 1 for line in shard_lines[:tagged]),
        errors_bytes=sum(len(line) + 1 for line in error_lines[:failed]),
        counts=Counts(tagged=tagged, failed=failed, blank=1),
    )
    (out / "progress-00000-of-00001.json").write_bytes(committed.to_json())
    with shard.open("ab") as handle:
        handle.write(b'{"id": "d9", "text": "half a rec')
    assert main([*command, "--output", str(out)]) == 0
    assert shard_records(out).keys() == shard_records(tmp_path / "straight").keys()
    assert (out / "errors.jsonl").read_bytes() == (tmp_path / "straight" / "errors.jsonl").read_bytes()


def descendants(pid: int) -> list[int]:
    """Every process under pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def worker_of_rank(launcher: int, rank: int) -> int | None:
    for pid in descendants(launcher):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and any(
            b"models.corpus" in part for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ):
            return pid
    return None


@pytest.mark.slow
def test_a_killed_process_resumes_and_every_document_is_written_once(
    roles_checkpoint: Path,  # noqa: F811
    tmp_path: Path,
):
    documents = [(f"d{index}", f"{TEXTS[index % 5]} {index}") for index in range(1500)]
    write_jsonl(tmp_path / "in.jsonl", documents, BAD, every=150)
    common = [
        "-m",
        "models.corpus",
        "--checkpoint",
        str(roles_checkpoint),
        "--input",
        str(tmp_path / "in.jsonl"),
        "--precision",
        "fp32",
        "--batch-docs",
        "4",
        "--commit-every",
        "0",
        "--no-progress",
    ]
    accelerate = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(ROOT / "configs/accelerate/cpu-2-processes.yaml"),
    ]
    out = tmp_path / "two"

    def launch(**kwargs):
        return subprocess.Popen(
            [*accelerate, "--main_process_port", str(free_port()), *common, "--output", str(out)],
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    launcher = launch()
    progress = out / "progress-00001-of-00002.json"
    deadline = time.time() + 300
    while not (progress.exists() and Progress.read(progress).position > 0):
        assert launcher.poll() is None, f"the run ended before it could be killed:\n{launcher.stdout.read()[-3000:]}"
        assert time.time() < deadline
        time.sleep(0.005)
    victim = worker_of_rank(launcher.pid, 1)
    assert victim is not None
    subprocess.run(["kill", "-KILL", str(victim)], check=True)
    output = launcher.communicate(timeout=120)[0]
    assert launcher.returncode != 0, "the launcher reports the killed process"
    killed_at = Progress.read(progress)
    assert not killed_at.done and 0 < killed_at.position, "killed mid-run"
    assert not (out / "summary.json").exists()

    resumed = launch()
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output[-4000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["processes"] == 2 and summary["documents"]["skipped"] > 0

    single = subprocess.run(
        [sys.executable, *common, "--output", str(tmp_path / "one")],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-4000:]
    two, one = shard_records(out), shard_records(tmp_path / "one")
    assert sorted(two) == sorted(one) == sorted(document_id for document_id, _ in documents)
    assert all(same_spans(two[document_id], one[document_id]) for document_id in one)
    assert (out / "errors.jsonl").read_bytes() == (tmp_path / "one" / "errors.jsonl").read_bytes()
    assert len((out / "errors.jsonl").read_bytes().splitlines()) == len(BAD)
    straight = json.loads((tmp_path / "one" / "summary.json").read_text(encoding="utf-8"))
    assert straight["spans"]["entities"] and straight["arguments"], "spans to count"
    for key in ("words", "spans", "arguments"):
        assert summary[key] == straight[key], f"{key}: the counts of a resumed job are the job's, each once"
    assert summary["documents"]["tagged"] == len(documents) == straight["documents"]["tagged"]


def test_the_output_folder_belongs_to_one_job(tiny_run: Path, tmp_path: Path, capsys):
    write_jsonl(tmp_path / "in.jsonl", [("a", TEXTS[0]), ("b", TEXTS[1])])
    command = ["--checkpoint", str(tiny_run / "model"), "--output", str(tmp_path / "out"), "--no-progress"]
    assert main([*command, "--input", str(tmp_path / "in.jsonl")]) == 0
    capsys.readouterr()
    (tmp_path / "other.txt").write_text(TEXTS[2], encoding="utf-8")
    assert main([*command, "--input", str(tmp_path / "in.jsonl"), str(tmp_path / "other.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a job started with other inputs" in err
    with (tmp_path / "in.jsonl").open("ab") as handle:
        handle.write(b'{"id": "c", "text": "x"}\n')
    assert main([*command, "--input", str(tmp_path / "in.jsonl")]) == 2, "an input changed since"
    assert main([*command, "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {tmp_path / 'missing.jsonl'}: no such file"
    assert (
        main(
            [
                "--checkpoint",
                str(tiny_run),
                "--input",
                str(tmp_path / "other.txt"),
                "--output",
                str(tmp_path / "elsewhere"),
            ]
        )
        == 2
    )
    assert "tagger.json is missing" in capsys.readouterr().err
    assert (
        main(
            [
                "--checkpoint",
                str(tiny_run / "model"),
                "--input",
                str(tmp_path / "other.txt"),
                "--output",
                str(tmp_path / "elsewhere"),
                "--no-progress",
            ]
        )
        == 0
    ), "the typo did not pin the folder"


def test_claims_are_read_alike_wherever_the_id_stands():
    def unit(raw: bytes) -> Unit:
        return Unit(0, "f.jsonl", 1, raw)

    assert declared_id(unit(b'{"id": "a\\u0062", "text": "x"}')) == "ab"
    assert declared_id(unit(b'{"text": "x", "id": "ab"}')) == "ab"
    assert declared_id(unit(b'  {"id" : 12 , "text": "x"}')) == 12
    assert declared_id(unit(b'{"id": 1.5, "text": "x"}')) is None
    assert declared_id(unit(b'{"id": "a", "text": ')) == "a", "a line claims its id even when broken further on"
    assert declared_id(unit(b"not json")) is None
    assert id_key("1") != id_key(1)
    seen = SeenIds(capacity=4)
    keys = [id_key(f"doc-{index}") for index in range(1000)]
    assert all(seen.add(key) for key in keys) and not any(seen.add(key) for key in keys) and len(seen) == 1000


class Blank:
    """A tagger that finds nothing, at once: what is measured is the reading and writing around it."""

    layers = {"entities": ["O"]}
    roles: list[str] = []

    def tag(self, texts):
        return [Doc(text, ()) for text in texts]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


@pytest.mark.slow
def test_a_million_lines_are_streamed_in_flat_memory(tmp_path: Path):
    path = tmp_path / "million.jsonl"
    text = "أعلن محمد في دمشق أن القوات استعادت السيطرة على مدينة دير الزور"
    with path.open("w", encoding="utf-8") as handle:
        for index in range(1_000_000):
            handle.write(f'{{"id": "doc-{index:07d}", "text": "{text} {index}"}}\n')
    size_mb = path.stat().st_size / 2**20
    out = tmp_path / "out"
    out.mkdir()
    worker = Worker(Blank(), out, 0, 1, batch_docs=64, batch_chars=500_000, commit_every=5)
    start, peak = rss_mb(), 0.0

    class Bar:  # samples memory as the reading goes
        n = 0

        def update(self, delta):
            nonlocal peak
            self.n += delta
            if self.n // 2**22 != (self.n - delta) // 2**22:
                peak = max(peak, rss_mb())

        def set_postfix_str(self, *args, **kwargs):
            pass

    worker.tag_share([path], Bar())
    assert Progress.read(out / "progress-00000-of-00001.json").counts.tagged == 1_000_000
    assert size_mb > 100
    # the ids' table takes 16 MB here (32 while it grows); the texts are never all held
    print(f"{size_mb:.0f} MB input: memory grew by {peak - start:.0f} MB")
    assert peak - start < 64, f"memory grew by {peak - start:.0f} MB over a {size_mb:.0f} MB input"
    assert sum(1 for _ in read_units([path])) == 1_000_000
