"""The legend of the HTML pages (models/html.py, also in eval's report) fits the page: a group with many subtypes,
such as Justice with its 13, wraps inside the legend on a wide screen and on a phone instead of running past it."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from test_reports import chromium, needs_chromium

from corpora.reader import Sentence
from eval.html import render_comparison
from eval.metrics import score_layer
from models.html import render_docs
from models.labels import bio_labels
from models.tagger import Doc, Span, WordTags

JUSTICE = [
    "Arrest_Jail",
    "Release_Parole",
    "Trial_Hearing",
    "Charge_Indict",
    "Sue",
    "Convict",
    "Sentence",
    "Fine",
    "Execute",
    "Extradite",
    "Acquit",
    "Appeal",
    "Pardon",
]
EVENT_TYPES = [
    *(f"Justice.{subtype}" for subtype in JUSTICE),
    "Personnel.Start_Position",
    "Transaction.Transfer_Ownership",
]
LAYERS = {"entities": bio_labels(["PERS", "LOC", "ORG", "MISC"]), "events": bio_labels(EVENT_TYPES)}
WORD = "كلمة "

# The page in a frame as wide as the screen measured (headless Chromium's window is 500 px at the least), and once
# it is laid out, what of each legend lies outside it, written into the host page for --dump-dom.
MEASURE = """<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const page = frame.contentDocument;
  const legends = [...page.querySelectorAll(".legend")].map(legend => {
    const box = legend.getBoundingClientRect();
    const outside = [...legend.children].filter(item => {
      const at = item.getBoundingClientRect();
      return at.left < box.left - 0.5 || at.right > box.right + 0.5 || item.scrollWidth > item.clientWidth + 1;
    });
    return {scrollWidth: legend.scrollWidth, clientWidth: legend.clientWidth, outside: outside.map(i => i.textContent)};
  });
  const measured = document.createElement("pre");
  measured.id = "measured";
  measured.textContent = JSON.stringify({viewport: frame.contentWindow.innerWidth,
                                         page: page.documentElement.scrollWidth, legends});
  document.body.append(measured);
});
</script>"""


# every event type (each Justice subtype a different number of times), then every entity type
LABELS = [
    *(label for count, label in enumerate(EVENT_TYPES, start=1) for _ in range(count % 4 + 1)),
    "PERS",
    "LOC",
    "ORG",
    "MISC",
]


def layer_of(label: str) -> str:
    return "events" if "." in label else "entities"


def tagged_page() -> str:
    """`python -m models --html`: a text with a one-word span of each of LABELS."""
    spans = tuple(
        Span(layer_of(label), label, index * len(WORD), index * len(WORD) + len(WORD) - 1, WORD.strip(), 0.9)
        for index, label in enumerate(LABELS)
    )
    return render_docs([("news/justice.txt", Doc(WORD * len(LABELS), spans))], LAYERS, "many subtypes")


def evaluation_page() -> str:
    """`python -m eval`'s gold-versus-predicted page: a sentence with a one-word span of each of LABELS, all found."""
    tags = {layer: [f"B-{label}" if layer_of(label) == layer else "O" for label in LABELS] for layer in LAYERS}
    sentence = Sentence(tuple(WORD.strip() for _ in LABELS), {layer: tuple(column) for layer, column in tags.items()})
    predicted = WordTags(tags, {layer: [0.9] * len(LABELS) for layer in LAYERS})
    report = {
        "data": "justice:test",
        "decoding": "viterbi",
        "n_sentences": 1,
        "layers": {layer: score_layer([column], [column]) for layer, column in tags.items()},
    }
    return render_comparison(report, [sentence], [predicted], LAYERS)


@needs_chromium
@pytest.mark.parametrize("width", [375, 1200])
@pytest.mark.parametrize("render", [tagged_page, evaluation_page])
def test_the_legends_fit_the_page(tmp_path: Path, render, width: int):
    host = tmp_path / "host.html"
    frame = (
        f'<iframe id="page" srcdoc="{html.escape(render())}" style="border:0;width:{width}px;height:900px"></iframe>'
    )
    host.write_text(f'<!DOCTYPE html><html><body style="margin:0">{frame}{MEASURE}</body></html>', encoding="utf-8")
    dom = chromium(tmp_path / "profile", f"--window-size={width + 100},1000", "--dump-dom", host.as_uri())
    measured = json.loads(html.unescape(re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S).group(1)))
    assert measured["viewport"] == width and measured["legends"]
    for legend in measured["legends"]:
        assert legend["outside"] == [] and legend["scrollWidth"] <= legend["clientWidth"], legend
    assert measured["page"] <= width, "the page scrolls sideways"
