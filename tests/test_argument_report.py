"""Event arguments in the gold-versus-predicted page (eval/html.py): each event's participants marked correct,
wrong role, missed or spurious, their counts, and the page unchanged where arguments are not known."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from test_reports import LAYERS, assert_not_blank, assert_self_contained, chromium, needs_chromium

from corpora.reader import Sentence
from eval.arguments import argument_scores
from eval.html import match_arguments, render_comparison
from eval.metrics import score_layer
from models.arguments import WordArgument
from models.tagger import WordTags

# One sentence whose spans are all right and whose arguments hold one of each outcome: only its arguments make
# it a sentence with an error.
WORDS = ("هاجم", "الجيش", "مدينة", "حلب", "وقتل", "أحمد", "في", "دمشق")
TAGS = {
    "entities": ("O", "B-ORG", "O", "B-LOC", "O", "B-PERS", "O", "B-LOC"),
    "events": ("B-Conflict.Attack", "O", "O", "O", "B-Life.Die", "O", "O", "O"),
}
ATTACK, DIE = (0, 1), (4, 5)
GOLD_ARGUMENTS = (
    WordArgument(ATTACK, (1, 2), "Agent"),
    WordArgument(ATTACK, (3, 4), "Place"),
    WordArgument(DIE, (5, 6), "Patient"),
)
PREDICTED_ARGUMENTS = (
    WordArgument(ATTACK, (1, 2), "Agent", 0.9),
    WordArgument(ATTACK, (3, 4), "Patient", 0.6),
    WordArgument(DIE, (7, 8), "Place", 0.4),
)
EXPECTED_EVENTS = [
    (
        ["هاجم", "Conflict.Attack"],
        [
            ("correct", ["✓", "Agent", "الجيش", "ORG · 0.90"]),
            ("wrong_type", ["≠", "gold Place · predicted Patient", "حلب", "LOC · 0.60"]),
        ],
    ),
    (
        ["وقتل", "Life.Die"],
        [("missed", ["✗", "Patient", "أحمد", "PERS"]), ("spurious", ["+", "Place", "دمشق", "LOC · 0.40"])],
    ),
]
# a sentence whose arguments are not annotated: its predicted ones are not listed, nor counted
UNKNOWN_WORDS, UNKNOWN_TAGS = ("قتل", "محمد"), {"entities": ("O", "B-PERS"), "events": ("B-Life.Die", "O")}
UNKNOWN_ARGUMENTS = (WordArgument((0, 1), (1, 2), "Patient", 0.8),)
# a sentence whose arguments are all right
RIGHT_WORDS, RIGHT_TAGS = (
    ("زار", "علي", "بغداد"),
    {"entities": ("O", "B-PERS", "B-LOC"), "events": ("B-Movement.Transport", "O", "O")},
)
RIGHT_ARGUMENTS = (WordArgument((0, 1), (1, 2), "Agent"), WordArgument((0, 1), (2, 3), "Place"))


def tags_of(tags: dict[str, tuple[str, ...]], arguments: tuple[WordArgument, ...] = ()) -> WordTags:
    return WordTags(
        {layer: list(values) for layer, values in tags.items()},
        {layer: [0.8] * len(values) for layer, values in tags.items()},
        arguments,
    )


def evaluation(with_head: bool = True):
    """Sentences, predictions and the report the harness would write for them (with its arguments part when the
    checkpoint has an argument head)."""
    sentences = [
        Sentence(WORDS, TAGS, arguments=GOLD_ARGUMENTS),
        Sentence(UNKNOWN_WORDS, UNKNOWN_TAGS),
        Sentence(RIGHT_WORDS, RIGHT_TAGS, arguments=RIGHT_ARGUMENTS),
    ]
    predicted = [
        tags_of(TAGS, PREDICTED_ARGUMENTS),
        tags_of(UNKNOWN_TAGS, UNKNOWN_ARGUMENTS),
        tags_of(RIGHT_TAGS, RIGHT_ARGUMENTS),
    ]
    if not with_head:
        predicted = [replace(tags, arguments=()) for tags in predicted]
    layers = {
        layer: score_layer([list(s.tags[layer]) for s in sentences], [p.tags[layer] for p in predicted])
        for layer in LAYERS
    }
    report = {"data": "toy:test", "decoding": "viterbi", "n_sentences": len(sentences), "layers": layers}
    if with_head:
        annotated = [index for index, sentence in enumerate(sentences) if sentence.arguments is not None]
        report["arguments"] = {
            "end_to_end": argument_scores(
                [sentences[i].arguments for i in annotated], [predicted[i].arguments for i in annotated]
            )
        }
    return report, sentences, predicted


class ArgumentView(HTMLParser):
    """Per sentence section: its events lists (event texts, then per participant its outcome and texts), and
    the rows of the argument counts table."""

    def __init__(self):
        super().__init__()
        self.sections: list[dict] = []
        self.counts: list[list[str]] = []
        self._depth, self._texts, self._in_counts = 0, None, False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = attributes.get("class", "").split()
        if tag == "section":
            self.sections.append({"class": attributes["class"], "events": []})
        elif tag == "table" and "arg-counts" in classes:
            self._in_counts = True
        elif tag == "tr" and self._in_counts:
            self.counts.append([])
            self._texts = self.counts[-1]
        elif tag == "ul" and (self._depth or "args" in classes):
            self._depth += 1
        elif tag == "li" and self._depth == 1:
            self.sections[-1]["events"].append(([], []))
            self._texts = self.sections[-1]["events"][-1][0]
        elif tag == "li" and self._depth == 2:
            outcome = next((name[2:] for name in classes if name.startswith("o-")), None)
            self.sections[-1]["events"][-1][1].append((outcome, []))
            self._texts = self.sections[-1]["events"][-1][1][-1][1]

    def handle_endtag(self, tag):
        if tag == "ul" and self._depth:
            self._depth -= 1
        elif tag == "table":
            self._in_counts = False

    def handle_data(self, data):
        if (self._depth or self._in_counts) and data.strip():
            self._texts.append(data.strip())


def view(page: str) -> ArgumentView:
    parser = ArgumentView()
    parser.feed(page)
    return parser


def test_arguments_are_matched_by_pair_then_role():
    assert [(m.trigger, m.entity, m.outcome) for m in match_arguments(GOLD_ARGUMENTS, PREDICTED_ARGUMENTS)] == [
        (ATTACK, (1, 2), "correct"),
        (ATTACK, (3, 4), "wrong_type"),
        (DIE, (5, 6), "missed"),
        (DIE, (7, 8), "spurious"),
    ]


def test_each_participant_is_marked_with_its_outcome_and_counted():
    report, sentences, predicted = evaluation()
    page = render_comparison(report, sentences, predicted, LAYERS)
    assert_self_contained(page)
    parsed = view(page)
    wrong, unknown, right = parsed.sections
    assert wrong["events"] == EXPECTED_EVENTS
    assert right["events"] == [
        (
            ["زار", "Movement.Transport"],
            [("correct", ["✓", "Agent", "علي", "PERS · 1.00"]), ("correct", ["✓", "Place", "بغداد", "LOC · 1.00"])],
        )
    ]
    assert unknown["events"] == [], "arguments not annotated: no participants listed, predicted or not"
    # spans all right, so the sentence is flagged by its arguments alone; the all-right one is not
    assert [section["class"] for section in parsed.sections] == ["sent err", "sent", "sent"]
    assert "only sentences with an error (1 of 3)" in page
    # ✓ ≠ ✗ +, the all-right sentence's two included; they add up to the harness's labelled counts
    header, row = parsed.counts
    assert header == ["arguments", "F1", "✓", "≠", "✗", "+"]
    labelled = report["arguments"]["end_to_end"]["labelled"]
    assert row == ["labelled", f"{100 * labelled['f1']:.2f}", "3", "1", "1", "1"]
    assert (labelled["n_correct"], labelled["n_gold"], labelled["n_pred"]) == (3, 5, 5)
    # English labels inside the right-to-left list are isolated
    assert '<ul class="events args" dir="rtl" lang="ar">' in page
    assert '<bdi class="role" dir="ltr">gold Place · predicted Patient</bdi>' in page


def test_counts_need_no_harness_report():
    report, sentences, predicted = evaluation()
    del report["arguments"]
    header, row = view(render_comparison(report, sentences, predicted, LAYERS)).counts
    assert row == ["labelled", "–", "3", "1", "1", "1"]


def test_pages_without_known_or_predicted_arguments_are_as_before():
    report, sentences, predicted = evaluation()
    unannotated = [replace(sentence, arguments=None) for sentence in sentences]
    del report["arguments"]
    before = render_comparison(report, unannotated, predicted, LAYERS)
    assert 'class="events args"' not in before and "arg-counts" not in before and "wrong type or role" not in before
    assert view(before).sections[0]["class"] == "sent"
    # a checkpoint without an argument head (none predicted, none reported) on annotated sentences: the same page
    report, sentences, predicted = evaluation(with_head=False)
    assert render_comparison(report, sentences, predicted, LAYERS) == render_comparison(
        report, unannotated, predicted, LAYERS
    )


@needs_chromium
def test_participants_render_on_a_phone_in_chromium(tmp_path: Path):
    page = tmp_path / "eval.html"
    page.write_text(render_comparison(*evaluation(), LAYERS), encoding="utf-8")
    screenshot = tmp_path / "eval.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=390,844", page.as_uri())
    assert_not_blank(screenshot)
    assert view(chromium(tmp_path / "profile", "--dump-dom", page.as_uri())).sections[0]["events"] == EXPECTED_EVENTS


def test_an_event_says_when_its_trigger_itself_is_wrong():
    # gold has the attack, the prediction a death on another word: every argument of either is then wrong too
    words, gold, guess = (
        ("قصف", "الجيش", "ومات", "علي"),
        ("B-Conflict.Attack", "O", "O", "O"),
        ("O", "O", "B-Life.Die", "O"),
    )
    entities = ("O", "B-ORG", "O", "B-PERS")
    sentence = Sentence(
        words, {"entities": entities, "events": gold}, arguments=(WordArgument((0, 1), (1, 2), "Agent"),)
    )
    tags = tags_of({"entities": entities, "events": guess}, (WordArgument((2, 3), (3, 4), "Patient", 0.7),))
    report = {
        "data": "toy:test",
        "decoding": "viterbi",
        "n_sentences": 1,
        "layers": {layer: score_layer([list(sentence.tags[layer])], [tags.tags[layer]]) for layer in LAYERS},
    }
    parsed = view(render_comparison(report, [sentence], [tags], LAYERS))
    assert parsed.sections[0]["events"] == [
        (["قصف", "Conflict.Attack · missed trigger"], [("missed", ["✗", "Agent", "الجيش", "ORG"])]),
        (["ومات", "Life.Die · spurious trigger"], [("spurious", ["+", "Patient", "علي", "PERS · 0.70"])]),
    ]
    assert parsed.counts[1] == ["labelled", "–", "0", "0", "1", "1"]
