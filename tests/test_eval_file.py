"""`python -m eval --data FILE`: scoring a CoNLL file that configs/corpora.yaml does not name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import synthetic_sentences, with_events, write_conll

from corpora.reader import CorpusError, read_conll_file
from eval.__main__ import file_label, is_file_value, main

SENTENCES = synthetic_sentences(9, seed=7)


@pytest.fixture(autouse=True)
def no_data_folder(monkeypatch, tmp_path: Path):
    """A file needs no data folder: point the default at one that does not exist."""
    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tmp_path / "no-data-here"))


def run_eval(tiny_run: Path, out: Path, *args: str) -> int:
    return main(["--checkpoint", str(tiny_run / "model"), "--out", str(out), *args])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and not err.startswith(('error: "', "error: '")), err
    return err


@pytest.mark.slow
def test_a_conll_file_is_scored_by_the_checkpoints_layers(tiny_run: Path, tmp_path: Path):
    data = tmp_path / "mine.conll"
    write_conll(data, SENTENCES)
    out = tmp_path / "reports"
    assert run_eval(tiny_run, out, "--data", str(data)) == 0
    report = json.loads((out / "eval-mine.conll.json").read_text(encoding="utf-8"))
    assert report["data"] == "mine.conll" and report["n_sentences"] == len(SENTENCES)
    assert set(report["layers"]) == {"entities"} and "arguments" not in report
    assert {"eval-mine.conll.md", "eval-mine.conll.html", "eval-mine.conll-f1-entities.png"} <= {
        path.name for path in out.iterdir()
    }


@pytest.mark.slow
def test_columns_picks_the_tag_column(tiny_run: Path, tmp_path: Path, capsys):
    plain, events_first = tmp_path / "plain.txt", tmp_path / "events-first.txt"
    write_conll(plain, SENTENCES)
    write_conll(events_first, [[(word, event, entity) for word, entity, event in s] for s in with_events(SENTENCES)])
    assert run_eval(tiny_run, tmp_path / "a", "--data", str(plain)) == 0
    assert run_eval(tiny_run, tmp_path / "b", "--data", str(events_first), "--columns", "_,entities") == 0
    expected = json.loads((tmp_path / "a" / "eval-plain.txt.json").read_text(encoding="utf-8"))["layers"]
    got = json.loads((tmp_path / "b" / "eval-events-first.txt.json").read_text(encoding="utf-8"))["layers"]
    assert got == expected
    capsys.readouterr()
    # by default the first tag column is the checkpoint's first layer: event tags there are refused
    assert run_eval(tiny_run, tmp_path / "c", "--data", str(events_first)) == 2
    assert "labels the checkpoint does not know" in error_line(capsys)


@pytest.mark.parametrize(
    "columns, expected", [("events", "unknown layer ['events']"), ("entities,entities", "named twice")]
)
@pytest.mark.slow
def test_bad_columns_are_refused(tiny_run: Path, tmp_path: Path, capsys, columns: str, expected: str):
    data = tmp_path / "mine.conll"
    write_conll(data, SENTENCES)
    assert run_eval(tiny_run, tmp_path / "out", "--data", str(data), "--columns", columns) == 2
    assert expected in error_line(capsys)


@pytest.mark.slow
def test_missing_file_is_one_line_error(tiny_run: Path, tmp_path: Path, capsys):
    assert run_eval(tiny_run, tmp_path / "out", "--data", str(tmp_path / "absent.conll")) == 2
    assert "absent.conll does not exist" in error_line(capsys)
    # no path separator, but a CoNLL ending: still a file, not an unknown corpus
    assert run_eval(tiny_run, tmp_path / "out", "--data", "absent.conll") == 2
    assert "does not exist" in error_line(capsys)


@pytest.mark.slow
def test_too_few_columns_is_one_line_error(tiny_run: Path, tmp_path: Path, capsys):
    data = tmp_path / "mine.conll"
    write_conll(data, SENTENCES)
    assert run_eval(tiny_run, tmp_path / "out", "--data", str(data), "--columns", "_,entities") == 2
    err = error_line(capsys)
    assert "mine.conll:1: 2 columns" in err and "needs 3" in err


@pytest.mark.slow
def test_unknown_corpus_names_the_corpora_and_files(tiny_run: Path, tmp_path: Path, capsys):
    assert run_eval(tiny_run, tmp_path / "out", "--data", "nosuch:test") == 2
    err = error_line(capsys)
    assert "unknown corpus nosuch" in err and "anercorp" in err and "CoNLL file" in err
    assert "'nosuch'" not in err


@pytest.mark.slow
def test_unknown_split_is_printed_without_keyerror_quotes(tiny_run: Path, tmp_path: Path, tiny_data_root: Path, capsys):
    assert run_eval(tiny_run, tmp_path / "out", "--data-root", str(tiny_data_root), "--data", "anercorp:nosuch") == 2
    assert "unknown split 'nosuch' of anercorp" in error_line(capsys)


def test_which_values_are_files(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain").write_text("w O\n", encoding="utf-8")
    assert is_file_value("plain") and is_file_value("dir/x") and is_file_value("x.CONLL") and is_file_value("x.txt")
    assert not is_file_value("anercorp:test") and not is_file_value("nosuch")


def test_report_name_has_no_path_separator():
    assert file_label(Path("../some/dir/my data (v2).conll")) == "my_data_v2_.conll"
    assert file_label(Path("a:b.conll")) == "a_b.conll"
    assert "/" not in file_label(Path("/")) and file_label(Path("..")) == "file"


def test_read_conll_file(tmp_path: Path):
    data = tmp_path / "x.conll"
    write_conll(data, [[("a", "B-PERS", "X", "O"), ("b", "I-PERS", "Y", "B-LOC")]])
    (sentence,) = read_conll_file(data, ["entities", None, "events"])
    assert sentence.tags == {"entities": ("B-PERS", "I-PERS"), "events": ("O", "B-LOC")}
    assert sentence.arguments is None
    with pytest.raises(CorpusError, match="needs 5"):
        read_conll_file(data, ["entities", None, None, "events"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_conll_file(tmp_path / "nope.conll", ["entities"])
