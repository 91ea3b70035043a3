"""Reports people look at: PNG plots, the HTML views (rendered in headless Chromium), the model card, --help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from corpora.reader import Sentence
from eval.html import render_comparison
from eval.metrics import score_layer
from eval.model_card import write_model_card
from eval.spans import MISSED, SPURIOUS, confusion_matrix, match_spans
from models.html import Palette, nested_pieces, render_docs, render_text
from models.tagger import Doc, Span, WordTags

PROJECT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENTITIES = {"entities": ["O", "B-PERS", "I-PERS", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]}
LAYERS = {**ENTITIES, "events": ["O", "B-Conflict.Attack", "I-Conflict.Attack", "B-Life.Die", "I-Life.Die"]}


def needs_chromium(test):
    # A browser start takes seconds, so every page rendered is a slow test (`make test-fast` leaves it out).
    test = pytest.mark.slow(test)
    # .ci/run installs Debian's chromium and sets REQUIRE_CHROMIUM, so CI fails instead of skipping.
    if Path(CHROMIUM).exists() or os.environ.get("REQUIRE_CHROMIUM"):
        return test
    return pytest.mark.skip(
        reason=f"{CHROMIUM} not found: apt-get install chromium (.ci/run does) to render the HTML reports"
    )(test)


def chromium(profile: Path, *args: str) -> str:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


class Marks(HTMLParser):
    """Every <mark> of a page: its attributes and the text inside it (nested marks included)."""

    def __init__(self):
        super().__init__()
        self.marks: list[dict] = []
        self._open: list[dict] = []
        self.rtl_blocks: list[str] = []  # the class of each right-to-left text block

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("dir") == "rtl":
            self.rtl_blocks.append(attributes.get("class", ""))
        if tag == "mark":
            mark = {**attributes, "text": "", "block": self.rtl_blocks[-1] if self.rtl_blocks else None}
            self.marks.append(mark)
            self._open.append(mark)

    def handle_endtag(self, tag):
        if tag == "mark":
            self._open.pop()

    def handle_data(self, data):
        for mark in self._open:
            mark["text"] += data


def parse_marks(page: str) -> Marks:
    parser = Marks()
    parser.feed(page)
    return parser


def assert_self_contained(page: str) -> None:
    for fetch in ("src=", "href=", "@import", "url(", "<script", "http://", "https://"):
        assert fetch not in page, f"the page would fetch or run something: {fetch}"
    assert "<style>" in page and 'name="viewport"' in page


def assert_not_blank(png: Path) -> None:
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(png)[..., :3]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 0.05, "the screenshot is one flat colour"
    coloured = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.15
    assert coloured.mean() > 0.002, "no coloured span highlights in the screenshot"
    assert (pixels.max(axis=-1) < 0.3).mean() > 0.002, "no dark text in the screenshot"


# ---------------------------------------------------------------- a known input

TEXT = "أعلن محمد في دمشق أن هجوم القوات على مدينة دير الزور.\nوقال أحمد علي"


def span(layer: str, label: str, words: str, score: float = 0.9) -> Span:
    start = TEXT.index(words)
    return Span(layer, label, start, start + len(words), words, score)


KNOWN_SPANS = (
    span("entities", "PERS", "محمد"),
    span("entities", "LOC", "دمشق"),
    span("events", "Conflict.Attack", "هجوم"),
    span("entities", "LOC", "دير الزور"),
    span("entities", "PERS", "أحمد علي"),
)


def test_crossing_spans_are_cut_so_that_elements_nest():
    text = "abcdefghijklmnop"
    entity, trigger = Span("entities", "ORG", 0, 10, text[:10], 1.0), Span("events", "Life.Die", 5, 15, text[5:15], 1.0)
    assert nested_pieces([entity, trigger]) == [(0, 10, 0), (5, 10, 1), (10, 15, 1)]
    page = render_text(text, [entity, trigger], Palette(LAYERS))
    marks = parse_marks(page).marks
    assert [(mark["data-label"], mark["text"]) for mark in marks] == [
        ("ORG", "abcdefghij"),
        ("Life.Die", "fghij"),
        ("Life.Die", "klmno"),
    ]
    assert "more" in marks[1]["class"] and "cont" in marks[2]["class"]
    assert page.endswith("p") and page.count("<mark") == page.count("</mark>") == 3


def test_tagged_articles_page_holds_every_span():
    page = render_docs([("news/1.txt", Doc(TEXT, KNOWN_SPANS))], LAYERS, "seed news")
    assert_self_contained(page)
    marks = parse_marks(page).marks
    assert [(m["data-layer"], m["data-label"], m["text"]) for m in marks] == [
        (s.layer, s.label, s.text) for s in sorted(KNOWN_SPANS, key=lambda s: s.start)
    ]
    assert all(TEXT[int(m["data-start"]) : int(m["data-end"])] == m["text"] for m in marks)
    # the same type has the same colour in every report; entities filled, events underlined
    classes = {m["data-label"]: m["class"].split() for m in marks}
    assert classes["PERS"][:3] == ["s", "fill", "k0"] and classes["LOC"][:3] == ["s", "fill", "k1"]
    assert classes["Conflict.Attack"][1] == "line"


@needs_chromium
def test_tagged_articles_render_right_to_left_in_chromium(tmp_path: Path):
    page = tmp_path / "news.html"
    page.write_text(render_docs([("news/1.txt", Doc(TEXT, KNOWN_SPANS))], LAYERS, "seed news"), encoding="utf-8")
    screenshot = tmp_path / "news.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=390,844", page.as_uri())
    assert_not_blank(screenshot)
    dom = parse_marks(chromium(tmp_path / "profile", "--dump-dom", page.as_uri()))
    assert {(m["data-layer"], m["data-label"], m["text"]) for m in dom.marks} == {
        (s.layer, s.label, s.text) for s in KNOWN_SPANS
    }
    assert dom.rtl_blocks == ["text"]


# ---------------------------------------------------------------- gold versus predicted

WORDS = ["أعلن", "محمد", "في", "دمشق", "و", "بغداد", "الأمم", "المتحدة"]
GOLD = ["O", "B-PERS", "O", "B-LOC", "O", "B-LOC", "B-ORG", "I-ORG"]
PRED = ["B-MISC", "B-PERS", "O", "B-ORG", "O", "O", "B-ORG", "O"]
EXPECTED_GOLD = {
    ("PERS", "محمد", "correct"),
    ("LOC", "دمشق", "wrong_type"),
    ("LOC", "بغداد", "missed"),
    ("ORG", "الأمم المتحدة", "missed"),
}
EXPECTED_PREDICTED = {
    ("MISC", "أعلن", "spurious"),
    ("PERS", "محمد", "correct"),
    ("ORG", "دمشق", "wrong_type"),
    ("ORG", "الأمم", "spurious"),
}


def toy_evaluation():
    sentences = [
        Sentence(tuple(WORDS), {"entities": tuple(GOLD)}),
        Sentence(("وصل", "أحمد"), {"entities": ("O", "B-PERS")}),
    ]
    predicted = [
        WordTags({"entities": PRED}, {"entities": [0.8] * len(PRED)}),
        WordTags({"entities": ["O", "B-PERS"]}, {"entities": [0.9, 0.7]}),
    ]
    scores = score_layer([list(s.tags["entities"]) for s in sentences], [p.tags["entities"] for p in predicted])
    report = {"data": "toy:test", "decoding": "viterbi", "n_sentences": 2, "layers": {"entities": scores}}
    return report, sentences, predicted


def test_spans_are_matched_by_exact_boundaries():
    outcomes = {(m.first, m.end, m.gold, m.predicted, m.outcome) for m in match_spans(GOLD, PRED)}
    assert outcomes == {
        (0, 1, None, "MISC", SPURIOUS),
        (1, 2, "PERS", "PERS", "correct"),
        (3, 4, "LOC", "ORG", "wrong_type"),
        (5, 6, "LOC", None, MISSED),
        (6, 8, "ORG", None, MISSED),
        (6, 7, None, "ORG", SPURIOUS),
    }


def test_confusion_matrix_adds_up_to_seqeval():
    report, sentences, predicted = toy_evaluation()
    gold, pred = [list(s.tags["entities"]) for s in sentences], [p.tags["entities"] for p in predicted]
    rows, columns, counts = confusion_matrix(gold, pred, ["PERS", "LOC", "ORG", "MISC"])
    assert rows == ["PERS", "LOC", "ORG", "MISC", "spurious"] and columns == ["PERS", "LOC", "ORG", "MISC", "missed"]
    expected = np.zeros((5, 5), dtype=int)
    expected[0, 0] = 2  # محمد, أحمد
    expected[1, 2] = expected[1, 4] = expected[2, 4] = 1  # دمشق as ORG; بغداد and الأمم المتحدة missed
    expected[4, 3] = expected[4, 2] = 1  # أعلن as MISC; الأمم as ORG
    assert (counts == expected).all()
    scores = report["layers"]["entities"]
    assert counts[:-1].sum() == scores["n_gold_spans"] and counts[:, :-1].sum() == scores["n_pred_spans"]
    assert np.trace(counts[:-1, :-1]) == round(scores["micro_precision"] * scores["n_pred_spans"])
    for index, kind in enumerate(rows[:-1]):
        assert counts[index].sum() == scores["per_type"].get(kind, {}).get("support", 0)


def comparison_marks(page: str) -> tuple[set, set]:
    sides = {"text gold": set(), "text predicted": set()}
    for mark in parse_marks(page).marks:
        outcome = next(name[2:] for name in mark["class"].split() if name.startswith("o-"))
        sides[mark["block"]].add((mark["data-label"], mark["text"], outcome))
    return sides["text gold"], sides["text predicted"]


def test_gold_versus_predicted_page_marks_every_outcome():
    page = render_comparison(*toy_evaluation(), ENTITIES)
    assert_self_contained(page)
    gold, predicted = comparison_marks(page)
    assert gold == EXPECTED_GOLD | {("PERS", "أحمد", "correct")}
    assert predicted == EXPECTED_PREDICTED | {("PERS", "أحمد", "correct")}
    assert page.count('class="sent err"') == 1 and page.count('class="sent"') == 1


@needs_chromium
def test_gold_versus_predicted_renders_in_chromium(tmp_path: Path):
    page = tmp_path / "eval.html"
    page.write_text(render_comparison(*toy_evaluation(), ENTITIES), encoding="utf-8")
    screenshot = tmp_path / "eval.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=390,844", page.as_uri())
    assert_not_blank(screenshot)
    gold, predicted = comparison_marks(chromium(tmp_path / "profile", "--dump-dom", page.as_uri()))
    assert EXPECTED_GOLD <= gold and EXPECTED_PREDICTED <= predicted


# ---------------------------------------------------------------- the CLI on the tiny run


@pytest.fixture(scope="module")
def evaluated_run(tiny_run: Path, tiny_data_root: Path, tmp_path_factory) -> Path:
    """A copy of the tiny run (the shared one stays untouched) after `python -m eval`."""
    from eval.__main__ import main

    run = tmp_path_factory.mktemp("evaluated") / "tiny"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("tensorboard"))
    saved = os.environ.get("ARABIC_NEWS_DATA")
    os.environ["ARABIC_NEWS_DATA"] = str(tiny_data_root)
    try:
        assert main(["--checkpoint", str(run / "model")]) == 0
    finally:
        if saved is None:
            os.environ.pop("ARABIC_NEWS_DATA")
        else:
            os.environ["ARABIC_NEWS_DATA"] = saved
    return run


@pytest.mark.slow
def test_eval_writes_plots_that_open_as_png(evaluated_run: Path):
    model = evaluated_run / "model"
    for name in (
        "eval-anercorp-test-f1-entities.png",
        "eval-anercorp-test-confusion-entities.png",
        "training-curves.png",
    ):
        path = model / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        pixels = imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.05, name
    page = (model / "eval-anercorp-test.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    assert page.count('<section class="sent') == 30
    scores = json.loads((model / "eval-anercorp-test.json").read_text())["layers"]["entities"]
    marks = parse_marks(page).marks
    assert sum(mark["block"] == "text gold" for mark in marks) == scores["n_gold_spans"]
    assert sum(mark["block"] == "text predicted" for mark in marks) == scores["n_pred_spans"]


@pytest.mark.slow
def test_model_card_describes_the_checkpoint(evaluated_run: Path):
    card = (evaluated_run / "model" / "README.md").read_text(encoding="utf-8")
    for expected in (
        "## Encoder",
        "`tiny:bert`",
        "hidden size 32",
        "## Data",
        "`anercorp:train`",
        "`anercorp:dev`",
        "## Labels",
        "`entities`: 4 types, 9 IOB2 labels: PERS, LOC, ORG, MISC",
        "## Metrics",
        "| test | entities |",
        "| PERS |",
        "| micro avg |",
        "![eval-anercorp-test-f1-entities.png]",
        "training-curves.png",
        "## How it was made",
        f"python -m train --config {evaluated_run / 'config.yaml'}",
        "python -m eval --checkpoint",
        "--data anercorp:test",
        "## Limitations",
        "tiny random test model",
    ):
        assert expected in card, expected


@pytest.mark.slow
def test_model_card_without_run_folder_or_reports(tiny_run: Path, tmp_path: Path):
    model = tmp_path / "model"
    shutil.copytree(tiny_run / "model", model)
    card = write_model_card(model).read_text(encoding="utf-8")
    assert "was not recorded" in card and "| dev | entities |" in card and "Evaluated with" not in card


def test_model_card_reads_the_harness_keys_and_survives_older_ones(tmp_path: Path):
    from eval.model_card import render_model_card
    from models.checkpoint import CheckpointInfo
    from models.settings import TaggerSettings

    settings = TaggerSettings(layers=ENTITIES, roles=(), normalisation="basic", max_length=24, overlap=6)

    def card_of(metrics: dict) -> str:
        info = CheckpointInfo(settings, {"encoder": "tiny:bert", "metrics": metrics}, {})
        return render_model_card(info, [], None, tmp_path / "model")

    card = card_of(
        {"test": {"entities": {"micro_f1": 0.5, "strict_micro_f1": 0.25}, "arguments": {"labelled_f1": 0.125}}}
    )
    assert "| test | entities | 50.00 | 25.00 |" in card
    assert "| test | arguments (end to end) | 12.50 | - |" in card
    # the keys that older checkpoints' tagger.json carry are not the harness's: shown as not recorded
    card = card_of({"test": {"entities": {"f1": 0.5, "f1_strict": 0.25}, "arguments": {"f1": 0.125}}})
    assert "| test | entities | - | - |" in card and "| test | arguments (end to end) | - | - |" in card


def test_training_curves_plot_each_layers_headline_dev_f1(tmp_path: Path):
    from eval.plots import plot_training_curves

    def width(columns: list[str]) -> int:
        """Pixel width of the curves: a second panel, for dev F1, appears only for a layer's headline column."""
        log_csv = tmp_path / "log.csv"
        log_csv.write_text(
            ",".join(["step", "epoch", "loss", *columns])
            + "\n"
            + ",".join(["5", "1.0", "0.9", *("0.5" for _ in columns)])
            + "\n",
            encoding="utf-8",
        )
        return imread(plot_training_curves(log_csv, tmp_path / "curves.png")).shape[1]

    loss_only = width([])
    assert width(["eval_entities_strict_micro_f1", "eval_mean_f1"]) == loss_only
    assert width(["eval_entities_micro_f1"]) > 1.5 * loss_only
    assert width(["eval_arguments_labelled_f1"]) > 1.5 * loss_only


@pytest.mark.slow
def test_tag_cli_writes_an_html_page(tiny_run: Path, tmp_path: Path):
    from models.__main__ import main

    article = tmp_path / "article.txt"
    article.write_text("أعلن محمد في دمشق أن القوات استعادت السيطرة.\nوقال أحمد علي في بغداد", encoding="utf-8")
    out, page = tmp_path / "out.jsonl", tmp_path / "news.html"
    assert main(["--checkpoint", str(tiny_run / "model"), str(article), "--out", str(out), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert_self_contained(html)
    record = json.loads(out.read_text(encoding="utf-8"))
    marks = parse_marks(html).marks
    assert sorted((m["data-label"], m["text"]) for m in marks) == sorted(
        (s["label"], s["text"]) for s in record["entities"]
    )
    assert "أعلن محمد في دمشق" in html and 'dir="rtl"' in html


# ---------------------------------------------------------------- --help of every entry point


@pytest.mark.parametrize("module", ["models", "eval", "train", "train.export", "train.offline_encoder"])
@pytest.mark.slow
def test_every_entry_point_explains_itself_in_one_screen(module: str):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module}")
    description = result.stdout.split("\n\n")[1]
    assert len(description.split()) >= 10 and not description.startswith(("options:", "positional")), description
    assert len(result.stdout.splitlines()) <= 40
