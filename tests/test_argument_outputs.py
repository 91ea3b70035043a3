"""Event arguments on every way out of the tagger: the JSONL records and --show of `python -m models`, the HTML
page, the ONNX graph with Tagger.load_onnx, and the standalone export's message; on a tiny checkpoint with roles."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from test_reports import (
    KNOWN_SPANS,
    LAYERS,
    TEXT,
    assert_not_blank,
    assert_self_contained,
    chromium,
    needs_chromium,
    parse_marks,
    span,
)

from models import Tagger
from models.__main__ import main, to_record
from models.checkpoint import TAGGER_FILE, CheckpointError, save_checkpoint
from models.html import render_docs
from models.labels import bio_labels
from models.modeling import HIDDEN_KEY, MultiHeadTagger
from models.settings import TaggerSettings
from models.tagger import Argument, Doc
from train.encoders import tiny_encoder

ROLES = ["Agent", "Patient", "Place"]
EVENT_TYPES = ["Conflict.Attack", "Life.Die", "Movement.Transport", "Contact.Meet"]
TEXTS = [
    "أعلن محمد في دمشق أن هجوم القوات على مدينة دير الزور.\nوقال أحمد علي إن اجتماع الأمم المتحدة في القاهرة",
    "قتل جورج بوش في بغداد",
    "وصل بشار الأسد إلى ألمانيا من القاهرة اليوم",
    "في",
]


@pytest.fixture(scope="module")
def roles_checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint with entities, events and roles, its weights random: built, not trained, as a few steps
    of training tag everything O and link nothing, and these checks need spans and arguments. A bias makes O the
    likeliest event tag of most words, as in news. Which spans and arguments it finds is the draw's: the checks
    compare every way out with the Tagger's Doc, whatever it holds."""
    torch.manual_seed(0)
    encoder, tokenizer = tiny_encoder(
        {"hidden_size": 32, "layers": 2, "heads": 2}, [word for text in TEXTS for word in text.split()]
    )
    layers = {"entities": bio_labels(["PERS", "LOC", "ORG", "MISC"]), "events": bio_labels(EVENT_TYPES)}
    model = MultiHeadTagger(encoder, layers, roles=ROLES).eval()
    with torch.no_grad():
        for head in model.heads.values():
            torch.nn.init.normal_(head.weight, std=1.0)
        model.heads["events"].bias[0] = 6.0
        torch.nn.init.normal_(model.argument_head.out.weight, std=1.0)
    folder = tmp_path_factory.mktemp("roles") / "model"
    # windows of 10 pieces, so that the first text's sentences are read in several, as long ones are, and a pair's
    # spans may come from different windows
    settings = TaggerSettings(
        layers=layers, roles=ROLES, normalisation="basic", max_length=10, overlap=3, word_pooling="mean"
    )
    save_checkpoint(model, tokenizer, folder, settings, {"encoder": "tiny:bert"})
    return folder


@pytest.fixture(scope="module")
def tagged(roles_checkpoint: Path) -> list[Doc]:
    return Tagger.load(roles_checkpoint, device="cpu", precision="fp32").tag(TEXTS)


@pytest.fixture(scope="module")
def no_roles_checkpoint(roles_checkpoint: Path, tmp_path_factory) -> Path:
    """The same checkpoint as one without an argument head: tagger.json without roles (its heads file keeps the
    head's weights, which nothing reads then)."""
    folder = tmp_path_factory.mktemp("no_roles") / "model"
    shutil.copytree(roles_checkpoint, folder)
    info = json.loads((folder / TAGGER_FILE).read_text(encoding="utf-8"))
    info["settings"]["roles"] = []
    (folder / TAGGER_FILE).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    return folder


def _inputs(tmp_path: Path) -> list[str]:
    """TEXTS as one .txt file and a .jsonl file of the rest, plus an empty document."""
    article = tmp_path / "article.txt"
    article.write_text(TEXTS[0], encoding="utf-8")
    records = tmp_path / "in.jsonl"
    records.write_text(
        "".join(
            json.dumps({"id": f"r{index}", "text": text}, ensure_ascii=False) + "\n"
            for index, text in enumerate([*TEXTS[1:], ""], start=1)
        ),
        encoding="utf-8",
    )
    return [str(article), str(records)]


def _ends(argument) -> tuple:
    return tuple((span.label, span.start, span.end, span.text) for span in (argument.event, argument.entity))


def _record_ends(argument: dict) -> tuple:
    return tuple(
        (end["label"], end["start"], end["end"], end["text"]) for end in (argument["event"], argument["entity"])
    )


def test_the_checkpoint_finds_arguments(tagged: list[Doc]):
    """What the other checks stand on."""
    assert sum(len(doc.arguments) for doc in tagged) >= 3


def test_jsonl_arguments_slice_the_text_and_refer_to_the_records_spans(
    roles_checkpoint: Path, tagged: list[Doc], tmp_path: Path
):
    out = tmp_path / "out.jsonl"
    assert (
        main(["--checkpoint", str(roles_checkpoint), *_inputs(tmp_path), "--out", str(out), "--precision", "fp32"]) == 0
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(TEXTS) + 1
    for record, doc in zip(records, [*tagged, Doc("", ())]):
        assert list(record) == ["id", "text", "entities", "events", "arguments"]
        for argument in record["arguments"]:
            assert set(argument) == {"event", "entity", "role", "score"}
            for end, layer in ((argument["event"], "events"), (argument["entity"], "entities")):
                assert record["text"][end["start"] : end["end"]] == end["text"]
                assert end in record[layer], (end, layer)
            assert argument["role"] in ROLES and 0 < argument["score"] <= 1
        assert [(*_record_ends(a), a["role"], a["score"]) for a in record["arguments"]] == [
            (*_ends(a), a.role, a.score) for a in doc.arguments
        ]
    assert records[-1]["arguments"] == []  # the empty document


def test_a_document_without_entities_or_without_triggers_has_no_arguments(roles_checkpoint: Path):
    for silenced, kept in (("entities", "events"), ("events", "entities")):
        tagger = Tagger.load(roles_checkpoint, device="cpu", precision="fp32")
        with torch.no_grad():
            tagger.model.heads[silenced].bias[0] = 1e4  # O everywhere
        record = to_record("a", tagger(TEXTS[0]), list(tagger.layers), arguments=True)
        assert record[kept] and record[silenced] == [] and record["arguments"] == []


def test_show_prints_each_event_with_its_participants(
    roles_checkpoint: Path, tagged: list[Doc], tmp_path: Path, capsys
):
    assert (
        main(
            [
                "--checkpoint",
                str(roles_checkpoint),
                *_inputs(tmp_path),
                "--out",
                str(tmp_path / "out.jsonl"),
                "--precision",
                "fp32",
                "--show",
            ]
        )
        == 0
    )
    blocks = re.split(r"^== ", capsys.readouterr().out, flags=re.M)[1:]  # one per document

    def columns(line: str) -> list[str]:  # label or role, offsets, score, text: apart by two spaces or more
        return re.split(r" {2,}", line.strip(), maxsplit=3)

    for doc, block in zip(tagged, blocks):
        lines = block.splitlines()
        for event in doc.events:
            [at] = [
                index
                for index, line in enumerate(lines)
                if line.startswith(f"   {event.label} ")
                and columns(line) == [event.label, f"[{event.start}:{event.end}]", f"{event.score:.2f}", event.text]
            ]
            participants = [
                [
                    argument.role,
                    f"[{argument.entity.start}:{argument.entity.end}]",
                    f"{argument.score:.2f}",
                    argument.entity.text,
                ]
                for argument in doc.arguments_of(event)
            ]
            below = lines[at + 1 : at + 1 + len(participants)]
            assert [columns(line) for line in below] == participants
            assert all(
                line.startswith(f"     {argument.role} ") for line, argument in zip(below, doc.arguments_of(event))
            ), "a role stands under its event"
    # and no other participant lines
    assert sum(line.startswith("     ") for block in blocks for line in block.splitlines()) == sum(
        len(doc.arguments) for doc in tagged
    )


class EventLists(HTMLParser):
    """The events lists of a page: per event, the texts of its item (trigger, subtype) and of each of its
    participants' (role, entity, "type · score")."""

    def __init__(self):
        super().__init__()
        self.events: list[tuple[list[str], list[list[str]]]] = []
        self._depth, self._texts = 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "ul" and (self._depth or dict(attrs).get("class") == "events"):
            self._depth += 1
        elif tag == "li" and self._depth == 1:
            self.events.append(([], []))
            self._texts = self.events[-1][0]
        elif tag == "li" and self._depth == 2:
            self.events[-1][1].append([])
            self._texts = self.events[-1][1][-1]

    def handle_endtag(self, tag):
        if tag == "ul" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth and data.strip():
            self._texts.append(data.strip())


def expected_lists(docs: list[Doc]) -> list[tuple[list[str], list[list[str]]]]:
    return [
        (
            [event.text, event.label],
            [
                [argument.role, argument.entity.text, f"{argument.entity.label} · {argument.score:.2f}"]
                for argument in doc.arguments_of(event)
            ]
            or [["no participants found"]],
        )
        for doc in docs
        for event in doc.events
    ]


def assert_tooltips_name_the_arguments(marks: list[dict], docs: list[Doc]) -> None:
    """Each trigger's tooltip lists its participants, each entity's its events."""

    def titles(layer: str, span) -> list[list[str]]:
        return [
            mark["title"].splitlines()
            for mark in marks
            if mark["data-layer"] == layer
            and (int(mark["data-start"]), int(mark["data-end"])) == (span.start, span.end)
        ]

    for doc in docs:
        for a in doc.arguments:
            assert all(f"{a.role}: {a.entity.text} · {a.score:.2f}" in lines for lines in titles("events", a.event))
            assert all(
                f"{a.role} of {a.event.text} ({a.event.label}) · {a.score:.2f}" in lines
                for lines in titles("entities", a.entity)
            )


def test_html_lists_each_event_with_its_participants(roles_checkpoint: Path, tagged: list[Doc], tmp_path: Path):
    page = tmp_path / "news.html"
    assert (
        main(
            [
                "--checkpoint",
                str(roles_checkpoint),
                *_inputs(tmp_path),
                "--out",
                str(tmp_path / "out.jsonl"),
                "--precision",
                "fp32",
                "--html",
                str(page),
            ]
        )
        == 0
    )
    html = page.read_text(encoding="utf-8")
    assert_self_contained(html)
    lists = EventLists()
    lists.feed(html)
    assert lists.events == expected_lists(tagged)
    marks = parse_marks(html).marks
    assert all(mark["block"] == "text" for mark in marks), "the lists add no <mark>: every mark is the article's"
    assert_tooltips_name_the_arguments(marks, tagged)


ANNOUNCED = span("events", "Contact.Phone_Write", "أعلن")  # an event with no participant
KNOWN_ARGUMENTS = (
    Argument(KNOWN_SPANS[2], KNOWN_SPANS[0], "Agent", 0.91),
    Argument(KNOWN_SPANS[2], KNOWN_SPANS[3], "Place", 0.5),
)
KNOWN_LISTS = [
    (["أعلن", "Contact.Phone_Write"], [["no participants found"]]),
    (["هجوم", "Conflict.Attack"], [["Agent", "محمد", "PERS · 0.91"], ["Place", "دير الزور", "LOC · 0.50"]]),
]


def test_known_arguments_are_listed_under_their_article_right_to_left():
    doc = Doc(TEXT, (ANNOUNCED, *KNOWN_SPANS), KNOWN_ARGUMENTS)
    html = render_docs([("news/1.txt", doc)], LAYERS, "seed news", arguments=True)
    assert_self_contained(html)
    lists = EventLists()
    lists.feed(html)
    assert lists.events == KNOWN_LISTS
    parsed = parse_marks(html)
    assert parsed.rtl_blocks == ["text", "events"]
    assert [(m["data-label"], m["text"]) for m in parsed.marks] == [
        (s.label, s.text) for s in sorted(doc.spans, key=lambda s: s.start)
    ]
    assert_tooltips_name_the_arguments(parsed.marks, [doc])
    assert "2 arguments" in html
    assert 'class="events"' not in render_docs([("news/1.txt", doc)], LAYERS, "seed news"), (
        "without arguments=True (a checkpoint without roles) the page is as before"
    )


@needs_chromium
def test_known_arguments_render_on_a_phone_in_chromium(tmp_path: Path):
    page = tmp_path / "news.html"
    page.write_text(
        render_docs(
            [("news/1.txt", Doc(TEXT, (ANNOUNCED, *KNOWN_SPANS), KNOWN_ARGUMENTS))], LAYERS, "seed news", arguments=True
        ),
        encoding="utf-8",
    )
    screenshot = tmp_path / "news.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=390,844", page.as_uri())
    assert_not_blank(screenshot)
    lists = EventLists()
    lists.feed(chromium(tmp_path / "profile", "--dump-dom", page.as_uri()))
    assert lists.events == KNOWN_LISTS


def test_a_checkpoint_without_roles_writes_as_before(no_roles_checkpoint: Path, tmp_path: Path, capsys):
    out, page = tmp_path / "out.jsonl", tmp_path / "news.html"
    assert (
        main(
            [
                "--checkpoint",
                str(no_roles_checkpoint),
                *_inputs(tmp_path),
                "--out",
                str(out),
                "--precision",
                "fp32",
                "--show",
                "--html",
                str(page),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(list(record) == ["id", "text", "entities", "events"] for record in records)
    assert not any(line.startswith("     ") for line in capsys.readouterr().out.splitlines()), "a participant line"
    html = page.read_text(encoding="utf-8")
    assert 'class="events"' not in html and not re.search(r"\d+ arguments", html) and "participants" not in html


# ---------------------------------------------------------------- ONNX and the standalone export
# (exporting an ONNX graph takes seconds: the tests that do are slow)


@pytest.fixture(scope="module")
def onnx_roles_checkpoint(roles_checkpoint: Path) -> Path:
    pytest.importorskip("onnxruntime", reason="the ONNX backend is an optional extra: pip install -e '.[onnx]'")
    pytest.importorskip("onnxscript", reason="torch.onnx's exporter needs onnxscript: pip install -e '.[onnx]'")
    from models.onnx_runtime import ONNX_FILE
    from train.export import main as export_main

    assert export_main(["--checkpoint", str(roles_checkpoint), "--onnx", str(roles_checkpoint / ONNX_FILE)]) == 0
    return roles_checkpoint


@pytest.mark.slow
def test_onnx_graph_outputs_the_hidden_state_after_the_layers(onnx_roles_checkpoint: Path):
    import onnx

    from models.onnx_runtime import ONNX_FILE

    graph = onnx.load(str(onnx_roles_checkpoint / ONNX_FILE)).graph
    assert [value.name for value in graph.output] == ["entities", "events", HIDDEN_KEY]


@pytest.mark.slow
def test_arguments_on_onnxruntime_equal_those_on_torch(onnx_roles_checkpoint: Path, tagged: list[Doc]):
    tagger = Tagger.load_onnx(onnx_roles_checkpoint, batch_size=2)
    assert tagger.argument_head is not None
    for torch_doc, onnx_doc in zip(tagged, tagger.tag(TEXTS), strict=True):
        assert [(*_ends(a), a.role) for a in torch_doc.arguments] == [(*_ends(a), a.role) for a in onnx_doc.arguments]
        for a, b in zip(torch_doc.arguments, onnx_doc.arguments):
            assert a.score == pytest.approx(b.score, abs=1e-3)
    assert any(doc.arguments for doc in tagged), "the check compared something"


@pytest.mark.slow
def test_a_graph_without_the_hidden_state_is_refused_for_a_checkpoint_with_roles(
    onnx_roles_checkpoint: Path, no_roles_checkpoint: Path
):
    from train.export import export_onnx

    old_graph = export_onnx(no_roles_checkpoint)  # as exported before the checkpoint had roles
    with pytest.raises(CheckpointError, match=f"no output \\['{HIDDEN_KEY}'\\].*export it again"):
        Tagger.load_onnx(onnx_roles_checkpoint, onnx_file=old_graph)


def test_standalone_export_says_it_has_no_arguments(
    roles_checkpoint: Path, no_roles_checkpoint: Path, tmp_path: Path, capsys
):
    from train.export import main as export_main

    assert export_main(["--checkpoint", str(roles_checkpoint), "--layer", "events", "--to", str(tmp_path / "a")]) == 0
    said = capsys.readouterr().out
    assert "arguments (Agent, Patient, Place) are not in it" in said and "Tagger" in said
    assert (
        export_main(["--checkpoint", str(no_roles_checkpoint), "--layer", "events", "--to", str(tmp_path / "b")]) == 0
    )
    assert "arguments" not in capsys.readouterr().out
