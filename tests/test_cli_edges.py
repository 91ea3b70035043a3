"""Rough edges of `python -m models` a new user hit (issue 21, point 4): wrong checkpoint paths, Windows-1256
input, a folder as input, CoNLL documents and columns, tagging once, `written:` lines, the BOM in the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from models.__main__ import main
from models.checkpoint import CheckpointError, read_info
from models.tagger import Tagger
from models.text import split_sentences

ARTICLE = "أعلن محمد في دمشق أن القوات استعادت السيطرة.\nوقال أحمد علي في بغداد"
OTHER = "وصل جورج بوش إلى القاهرة"


@pytest.fixture()
def inputs(tmp_path: Path) -> list[Path]:
    article, other = tmp_path / "article.txt", tmp_path / "other.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    other.write_text(OTHER, encoding="utf-8")
    return [article, other]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------- 1. the checkpoint folder


@pytest.mark.slow
def test_a_checkpoint_folder_that_does_not_exist_says_so(tiny_run: Path):
    typo = tiny_run / "modle"
    with pytest.raises(CheckpointError, match=r"does not exist") as info:
        read_info(typo)
    assert "tagger.json is missing" not in str(info.value)


@pytest.mark.slow
def test_the_cli_says_a_missing_checkpoint_folder_does_not_exist(tiny_run: Path, inputs: list[Path], capsys):
    assert main(["--checkpoint", str(tiny_run / "modle"), str(inputs[0])]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{tiny_run / 'modle'} does not exist" in line and "tagger.json" not in line


@pytest.mark.slow
def test_a_run_folder_suggests_its_model_folder(tiny_run: Path, inputs: list[Path], capsys):
    assert main(["--checkpoint", str(tiny_run), str(inputs[0])]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "tagger.json is missing" in line and f"its checkpoint is {tiny_run / 'model'}" in line


def test_a_standalone_export_keeps_its_hint(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(
        CheckpointError,
        match=r"tagger\.json is missing \(a standalone export\? load it with "
        r"transformers\.pipeline\)",
    ):
        read_info(tmp_path)


def test_an_empty_folder_says_only_that_tagger_json_is_missing(tmp_path: Path):
    with pytest.raises(CheckpointError) as info:
        read_info(tmp_path)
    assert str(info.value) == f"{tmp_path} is not a tagger checkpoint: tagger.json is missing"


# ---------------------------------------------------------------- 2. Windows-1256 input


@pytest.mark.slow
def test_a_windows_1256_file_names_the_likely_cause_and_the_fix(tiny_run: Path, tmp_path: Path, capsys):
    path = tmp_path / "cp1256.txt"
    path.write_bytes(ARTICLE.encode("cp1256"))
    assert main(["--checkpoint", str(tiny_run / "model"), str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: {path}: not UTF-8 at byte offset 0 (Arabic text saved as Windows-1256? convert it: "
        f"iconv -f cp1256 -t utf-8 {path} > {path}.utf8)"
    )


def test_a_cp1256_file_with_a_latin_heading_gets_the_hint_too(tmp_path: Path):
    from models.__main__ import InputError, read_inputs

    path = tmp_path / "headed.jsonl"
    path.write_bytes(b'{"id": "1", "text": "' + ARTICLE.replace("\n", " ").encode("cp1256") + b'"}\n')
    with pytest.raises(InputError, match=r"at byte offset 21 \(Arabic text saved as Windows-1256\?"):
        read_inputs([path])


@pytest.mark.parametrize("data", [ARTICLE.encode() + b"\xff", "café".encode("latin-1")])
def test_other_bad_bytes_get_no_windows_1256_hint(tmp_path: Path, data: bytes):
    from models.__main__ import InputError, read_inputs

    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        read_inputs([path])
    assert str(info.value).endswith(f"not UTF-8 at byte offset {len(data) - 1}")


# ---------------------------------------------------------------- 3. a folder or a missing file as input


@pytest.mark.parametrize("kind", ["folder", "missing"])
@pytest.mark.slow
def test_a_folder_or_a_missing_input_is_one_error_line_and_exit_2(tiny_run: Path, tmp_path: Path, kind: str, capsys):
    path = tmp_path / "articles"
    if kind == "folder":
        path.mkdir()
    assert main(["--checkpoint", str(tiny_run / "model"), str(path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: {path}: is a folder; give the .txt or .jsonl files in it"
        if kind == "folder"
        else f"error: {path}: no such file"
    )


@pytest.mark.parametrize("option", ["--out", "--html"])
def test_an_output_that_cannot_be_written_is_one_error_line_and_exit_2(
    tiny_run: Path, inputs: list[Path], tmp_path: Path, option: str, capsys
):
    in_the_way = tmp_path / "taken"
    in_the_way.write_text("a file where the output's folder would be", encoding="utf-8")
    assert main(["--checkpoint", str(tiny_run / "model"), str(inputs[0]), option, str(in_the_way / "out")]) == 2
    assert one_error_line(capsys.readouterr().err).startswith(f"error: {in_the_way}: ")


# ---------------------------------------------------------------- 4. CoNLL documents and columns


@pytest.fixture()
def varied_tagger(tiny_run: Path, monkeypatch) -> Tagger:
    """The tiny checkpoint with a random entity head, what `python -m models` loads: the tiny model itself tags
    every word O, which would leave the B- and I- tags of the CoNLL rows untested."""
    import torch

    from models.checkpoint import load_checkpoint

    model, tokenizer, info = load_checkpoint(tiny_run / "model")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        head = model.heads["entities"]
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 5)
        head.bias.zero_()
    tagger = Tagger(model, tokenizer, info.settings)
    monkeypatch.setattr(Tagger, "load", classmethod(lambda cls, *args, **kwargs: tagger))
    return tagger


@pytest.mark.slow
def test_conll_names_its_columns_and_marks_each_document(varied_tagger: Tagger, inputs: list[Path], tmp_path: Path):
    out = tmp_path / "out.conll"
    assert (
        main(["--checkpoint", "loaded by the fixture", *map(str, inputs), "--format", "conll", "--out", str(out)]) == 0
    )
    layers = list(varied_tagger.layers)
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "# columns: token " + " ".join(layers)
    assert sum(line.startswith("# ") for line in lines) == 1
    starts = [index for index, line in enumerate(lines) if line.startswith("-DOCSTART-")]
    assert [lines[index] for index in starts] == [f"-DOCSTART- {path}" for path in inputs]
    assert starts[0] == 1 and all(lines[index + 1] == "" for index in starts)
    tags = {tag.split("-")[0] for line in lines if "\t" in line for tag in line.split("\t")[1:]}
    assert tags == {"B", "I", "O"}, "the random head should give chunks of several words"
    # each document's rows are exactly what the tagger predicts for its words, sentence by sentence
    for (start, end), path in zip(zip(starts, [*starts[1:], len(lines)]), inputs):
        blocks = "\n".join(lines[start + 2 : end]).strip("\n").split("\n\n")
        sentences = split_sentences(path.read_text(encoding="utf-8"))
        predicted = varied_tagger.predict_words(
            [[word.text for word in sentence] for sentence in sentences], [0] * len(sentences)
        )
        assert len(blocks) == len(sentences)
        for block, sentence, predictions in zip(blocks, sentences, predicted):
            expected = [
                [word.text, *(predictions.tags[layer][index] for layer in layers)]
                for index, word in enumerate(sentence)
            ]
            assert [row.split("\t") for row in block.split("\n")] == expected


def test_a_conll_id_stays_on_its_line(tmp_path: Path):
    from models.__main__ import to_conll
    from models.tagger import Doc

    assert to_conll("a\tb\nc", Doc("", ()), ["entities"]) == "-DOCSTART- a b c\n\n"


# ---------------------------------------------------------------- 5. tagging once


@pytest.mark.slow
def test_show_conll_and_html_tag_the_text_once(tiny_run: Path, inputs: list[Path], tmp_path: Path, monkeypatch):
    calls = []
    predict_words = Tagger.predict_words

    def counted(self, *args, **kwargs):
        calls.append(len(args[0]))
        return predict_words(self, *args, **kwargs)

    monkeypatch.setattr(Tagger, "predict_words", counted)
    assert (
        main(
            [
                "--checkpoint",
                str(tiny_run / "model"),
                *map(str, inputs),
                "--format",
                "conll",
                "--show",
                "--html",
                str(tmp_path / "page.html"),
                "--out",
                str(tmp_path / "out.conll"),
            ]
        )
        == 0
    )
    assert len(calls) == 1


# ---------------------------------------------------------------- 6. written: lines


@pytest.mark.slow
def test_out_is_reported_written_like_html(tiny_run: Path, inputs: list[Path], tmp_path: Path, capsys):
    out, page = tmp_path / "out.jsonl", tmp_path / "page.html"
    assert main(["--checkpoint", str(tiny_run / "model"), str(inputs[0]), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert said.out.splitlines() == [f"written: {out}"] and said.err == ""
    assert main(["--checkpoint", str(tiny_run / "model"), str(inputs[0]), "--out", str(out), "--html", str(page)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"written: {out}", f"written: {page}"]
    # with no --out the records own standard output: the report goes to standard error
    assert main(["--checkpoint", str(tiny_run / "model"), str(inputs[0]), "--html", str(page)]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["id"] == str(inputs[0]) and said.err.splitlines() == [f"written: {page}"]


# ---------------------------------------------------------------- 7. the BOM in the schema


def test_help_says_offsets_index_the_text_field_without_the_bom(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        'offsets start/end into the record\'s "text" field, which is the input without a leading byte '
        "order mark (BOM)" in help_text
    )


@pytest.mark.slow
def test_offsets_index_the_text_field_of_a_file_with_a_bom(tiny_run: Path, tmp_path: Path):
    path, out = tmp_path / "bom.txt", tmp_path / "out.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ARTICLE.encode())
    assert main(["--checkpoint", str(tiny_run / "model"), str(path), "--out", str(out)]) == 0
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["text"] == ARTICLE
    spans = [span for layer in record if isinstance(record[layer], list) for span in record[layer]]
    assert all(record["text"][span["start"] : span["end"]] == span["text"] for span in spans)


# ---------------------------------------------------------------- 8. --show columns


def test_show_sizes_its_columns_to_their_content():
    from models.__main__ import show
    from models.tagger import Argument, Doc, Span

    person = Span("entities", "PERS", 0, 4, "محمد", 0.98)
    place = Span("entities", "LOC", 1210, 1214, "دمشق", 0.9)
    hired = Span("events", "Personnel.Start_Position", 10, 13, "عين", 0.91)
    sold = Span("events", "Transaction.Transfer_Ownership", 1300, 1303, "باع", 0.7)
    died = Span("events", "Life.Die", 20, 23, "قتل", 0.5)
    arguments = (Argument(hired, person, "Agent", 0.8), Argument(sold, place, "Place", 0.61))
    spans = (person, hired, died, sold, place)
    lines = show("doc", Doc("", spans, arguments), ["entities", "events"]).splitlines()
    rows = [line for line in lines if not line.startswith(("==", "--"))]
    # per layer in the spans' order, under each event its participants
    texts = ["محمد", "دمشق", "عين", "محمد", "قتل", "باع", "دمشق"]
    assert len(rows) == len(texts) and all(row.endswith(f"  {text}") for row, text in zip(rows, texts))
    # the text last, every column before it starting where it does on the other rows
    assert len({len(row) - len(text) for row, text in zip(rows, texts)}) == 1
    assert len({row.index("[") for row in rows}) == 1
    assert len({re.search(r"\] +\d\.\d\d", row).end() for row in rows}) == 1
    # as wide as the widest entry, no wider
    assert "   Transaction.Transfer_Ownership  [1300:1303]  0.70  باع" in rows
    assert "   PERS                            [0:4]        0.98  محمد" in rows
    assert "     Place                         [1210:1214]  0.61  دمشق" in rows
