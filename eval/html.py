"""Gold versus predicted spans of an evaluated split, as one self-contained HTML page.

Each sentence shows two lines, right to left: gold spans, then predicted spans, coloured by type as in
models/html.py. Every span is marked with its outcome (eval/spans.py): correct, wrong type, missed (gold
line only) or spurious (predicted line only), each with its own outline style and symbol.

Where the corpus annotates event arguments and the checkpoint predicts them, a sentence with an event also
lists each event (gold or predicted trigger) with its participants, each marked with the same outcomes:
an argument is a (trigger span, entity span) pair with a role, so a wrong role is the pair's wrong type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from corpora.reader import Sentence
from eval.spans import CORRECT, MISSED, OUTCOMES, SPURIOUS, WRONG_TYPE, match_spans, outcome_of
from models.arguments import ENTITY_LAYER, TRIGGER_LAYER, WordArgument
from models.html import Palette, chip, legend, page, render_text
from models.spans import Span, word_spans
from models.tagger import WordTags
from models.text import Word

# outcome -> (symbol, words, outline colour, outline style); style and symbol differ, not colour alone
OUTCOME_LOOK = {
    CORRECT: ("✓", "correct", "#1a7f37", "solid"),
    WRONG_TYPE: ("≠", "wrong type", "#8250df", "double"),
    MISSED: ("✗", "missed", "#cf222e", "dashed"),
    SPURIOUS: ("+", "spurious", "#bc4c00", "dotted"),
}

EXTRA_CSS = (
    "\n".join(
        f"mark.o-{outcome},.outcome.o-{outcome}{{outline:{'3px' if style == 'double' else '2px'} {style} {colour};"
        f"outline-offset:1px}}\n"
        f'mark.o-{outcome}::before{{content:"{symbol}";color:{colour}}}'
        for outcome, (symbol, _, colour, style) in OUTCOME_LOOK.items()
    )
    + """
mark.s::before{font:700 .6rem/1 system-ui,sans-serif;vertical-align:.55em;margin-inline-end:.1em}
mark.s.cont::before{content:none}
.outcome{display:inline-block;padding:0 .35em;margin:.1em .5em .1em 0;border-radius:.2em}
.scores{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
td,th{padding:.15rem .5rem;border-bottom:1px solid #d1d9e0;text-align:right}
th:first-child,td:first-child{text-align:left}
.sent{border-top:1px solid #d1d9e0;padding:.4rem 0}
.sent .side{display:block;font-size:.7rem;color:#59636e;margin-top:.2rem}
.sent .text{line-height:2.2}
#errors-only:checked ~ main .sent:not(.err){display:none}
"""
)
# only on pages that list arguments, so that the others stay byte for byte as they were
ARGUMENT_CSS = ".args .outcome{margin:0;margin-inline-end:.3em;font:600 .75rem/1.4 system-ui,sans-serif}\n"


def join_words(words: Sequence[str]) -> tuple[str, list[Word]]:
    """The sentence as text, words separated by one space, and its words with their character offsets."""
    placed, position = [], 0
    for word in words:
        placed.append(Word(word, position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), placed


def compare_sentence(
    sentence: Sentence, predicted: WordTags, layers: Sequence[str]
) -> tuple[str, list[Span], list[Span], dict[Span, str]]:
    """Text, gold spans, predicted spans and each span's outcome, for the layers the sentence annotates."""
    text, words = join_words(sentence.words)
    gold_spans, predicted_spans, outcomes = [], [], {}
    for layer in layers:
        if layer not in sentence.tags:
            continue
        gold = word_spans(text, words, layer, sentence.tags[layer])
        guessed = word_spans(text, words, layer, predicted.tags[layer], predicted.scores[layer])
        for match in match_spans(sentence.tags[layer], predicted.tags[layer]):
            for found, side in ((gold, gold_spans), (guessed, predicted_spans)):
                span = found.get((match.first, match.end))
                if span is not None:
                    side.append(span)
                    outcomes[span] = match.outcome
    return text, gold_spans, predicted_spans, outcomes


@dataclass(frozen=True)
class ArgumentMatch:
    trigger: tuple[int, int]  # word range [first, end)
    entity: tuple[int, int]
    gold: WordArgument | None  # None where gold does not link this pair
    predicted: WordArgument | None

    @property
    def outcome(self) -> str:
        # The pair is the argument's boundaries and the role its type, so the span vocabulary carries over.
        return outcome_of(self.gold and self.gold.role, self.predicted and self.predicted.role)


def match_arguments(gold: Iterable[WordArgument], predicted: Iterable[WordArgument]) -> list[ArgumentMatch]:
    """Every (trigger, entity) pair of one sentence that gold or the predictions link, trigger then entity order.
    A pair takes one role per side (the corpus reader and the metric refuse two), so pairs identify arguments."""
    gold_pairs = {(argument.trigger, argument.entity): argument for argument in gold}
    predicted_pairs = {(argument.trigger, argument.entity): argument for argument in predicted}
    return [
        ArgumentMatch(*pair, gold_pairs.get(pair), predicted_pairs.get(pair))
        for pair in sorted(gold_pairs.keys() | predicted_pairs.keys())
    ]


def event_arguments(sentence: Sentence, tags: WordTags, palette: Palette) -> tuple[str, list[ArgumentMatch]]:
    """The sentence's events list, gold versus predicted (as models/html.py's event_list, with outcomes), and
    its argument matches. Events are the gold and predicted triggers, and any trigger an argument names."""
    text, placed = join_words(sentence.words)
    matches = match_arguments(sentence.arguments or (), tags.arguments)
    spans = {
        layer: {
            (match.first, match.end): match
            for match in match_spans(sentence.tags.get(layer, ()), tags.tags.get(layer, ()))
        }
        for layer in (TRIGGER_LAYER, ENTITY_LAYER)
    }
    sides = {
        layer: (
            word_spans(text, placed, layer, sentence.tags.get(layer, ())),
            word_spans(text, placed, layer, tags.tags.get(layer, ())),
        )
        for layer in (TRIGGER_LAYER, ENTITY_LAYER)
    }

    def span_chip(layer: str, words: tuple[int, int], prefer_gold: bool) -> tuple[str, str]:
        """The words as a chip coloured by their type on the preferred side, and that type; uncoloured where
        neither side has the span (rather than a colour the legend would count)."""
        gold, predicted = (found.get(words) for found in sides[layer])
        span = (gold or predicted) if prefer_gold else (predicted or gold)
        if span is None:
            return f'<span class="chip">{escape(" ".join(sentence.words[words[0] : words[1]]))}</span>', ""
        return chip(span, palette), span.label

    items = []
    for trigger in sorted(spans[TRIGGER_LAYER].keys() | {match.trigger for match in matches}):
        event = spans[TRIGGER_LAYER].get(trigger)
        head, label = span_chip(TRIGGER_LAYER, trigger, True)
        if event is not None and event.outcome == WRONG_TYPE:
            label = f"gold {event.gold}, predicted {event.predicted}"
        elif event is not None and event.outcome != CORRECT:
            label = f"{label} · {OUTCOME_LOOK[event.outcome][1]} trigger"
        participants = []
        for match in (match for match in matches if match.trigger == trigger):
            symbol, words, _, _ = OUTCOME_LOOK[match.outcome]
            words = "wrong role" if match.outcome == WRONG_TYPE else words
            role = (
                f"gold {match.gold.role} · predicted {match.predicted.role}"
                if match.outcome == WRONG_TYPE
                else (match.gold or match.predicted).role
            )
            entity, kind = span_chip(ENTITY_LAYER, match.entity, match.gold is not None)
            detail = " · ".join(filter(None, [kind, match.predicted and f"{match.predicted.score:.2f}"]))
            participants.append(
                f'<li class="arg o-{match.outcome}"><span class="outcome o-{match.outcome}" title="{words}">'
                f'{symbol}</span> <bdi class="role" dir="ltr">{escape(role)}</bdi> {entity} '
                f'<bdi class="sub" dir="ltr">{escape(detail)}</bdi></li>'
            )
        participants = participants or ['<li><bdi class="sub" dir="ltr">no participants, gold or predicted</bdi></li>']
        items.append(
            f'<li>{head} <bdi class="sub" dir="ltr">{escape(label)}</bdi><ul>{"".join(participants)}</ul></li>'
        )
    if not items:
        return "", matches
    return (
        '<span class="side">events and participants</span>'
        f'<ul class="events args" dir="rtl" lang="ar">{"".join(items)}</ul>'
    ), matches


def _decorator(outcomes: dict[Span, str], gold_side: bool, counterparts: dict[tuple, str]):
    def decorate(span: Span) -> tuple[str, str]:
        outcome = outcomes[span]
        words = OUTCOME_LOOK[outcome][1]
        if outcome == WRONG_TYPE:
            other = counterparts[(span.layer, span.start, span.end)]
            words = (
                f"wrong type: gold {span.label if gold_side else other}, predicted {other if gold_side else span.label}"
            )
        score = "" if gold_side else f" · {span.score:.2f}"
        return f"o-{outcome}", f"{span.label} · {words}{score}"

    return decorate


def render_comparison(
    report: dict, sentences: Sequence[Sentence], predicted: Sequence[WordTags], layers: dict[str, list[str]]
) -> str:
    """The whole page: scores and outcome counts per layer (and of arguments), legends, then every sentence
    (errors flagged) with, where arguments are annotated and predicted, its events and their participants."""
    palette = Palette(layers)
    scored = [layer for layer in layers if layer in report["layers"]]
    counts = {layer: Counter() for layer in scored}
    # A checkpoint without an argument head predicts none and the harness reports none: listing the gold ones
    # would only show them all missed and flag every sentence.
    with_arguments = "arguments" in report or any(tags.arguments for tags in predicted)
    argument_counts: Counter | None = None
    blocks, gold_spans, n_errors = [], [], 0
    for number, (sentence, tags) in enumerate(zip(sentences, predicted, strict=True), start=1):
        text, gold, guessed, outcomes = compare_sentence(sentence, tags, scored)
        if not text:
            continue
        # a matched pair counts once, on the gold side
        for span in gold + [span for span in guessed if outcomes[span] == SPURIOUS]:
            counts[span.layer][outcomes[span]] += 1
        gold_spans += gold
        gold_types = {(s.layer, s.start, s.end): s.label for s in gold}
        guessed_types = {(s.layer, s.start, s.end): s.label for s in guessed}
        events, arguments = "", []
        if with_arguments and sentence.arguments is not None:
            events, arguments = event_arguments(sentence, tags, palette)
            argument_counts = (argument_counts or Counter()) + Counter(match.outcome for match in arguments)
        errors = any(outcome != CORRECT for outcome in [*outcomes.values(), *(m.outcome for m in arguments)])
        n_errors += errors
        blocks.append(
            f'<section class="sent{" err" if errors else ""}" id="s{number}">'
            f'<span class="side">#{number} gold</span>'
            f'<div class="text gold" dir="rtl" lang="ar">'
            f"{render_text(text, gold, palette, _decorator(outcomes, True, guessed_types))}</div>"
            f'<span class="side">predicted</span>'
            f'<div class="text predicted" dir="rtl" lang="ar">'
            f"{render_text(text, guessed, palette, _decorator(outcomes, False, gold_types))}</div>{events}</section>"
        )
    # outcome columns headed by their symbol alone, so the table fits a phone
    header = [
        ("layer", ""),
        ("F1", "micro F1"),
        ("strict", "strict IOB2 micro F1"),
        *((OUTCOME_LOOK[outcome][0], OUTCOME_LOOK[outcome][1]) for outcome in OUTCOMES),
    ]
    rows = ["<tr>" + "".join(f'<th title="{escape(title)}">{escape(cell)}</th>' for cell, title in header) + "</tr>"]
    for layer in scored:
        scores = report["layers"][layer]
        cells = [
            layer,
            f"{100 * scores['micro_f1']:.2f}",
            f"{100 * scores['strict_micro_f1']:.2f}",
            *(str(counts[layer][outcome]) for outcome in OUTCOMES),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    tables = f"<table>{''.join(rows)}</table>"
    if argument_counts is not None:
        tables += argument_table(report, argument_counts)
    outcome_keys = "".join(
        f'<span class="outcome o-{outcome}">{symbol} '
        f"{'wrong type or role' if outcome == WRONG_TYPE and argument_counts is not None else words}"
        f"</span>"
        for outcome, (symbol, words, _, _) in OUTCOME_LOOK.items()
    )
    argument_note = (
        ""
        if argument_counts is None
        else " An argument is right when its trigger span, entity span and role all are, so a trigger or "
        "entity boundary error shows as missed and spurious arguments."
    )
    body = (
        f'<p class="note">{report["n_sentences"]} sentences, decoding {escape(str(report["decoding"]))}; '
        f"spans match when their boundaries are identical, so a boundary error shows as one missed and one "
        f'spurious span.{argument_note}</p><div class="scores">{tables}</div>'
        f'<div class="legend"><h3>outcome</h3>{outcome_keys}</div>{legend(palette, gold_spans, counted="gold spans")}'
        f'<input type="checkbox" id="errors-only"><label for="errors-only"> only sentences with an error '
        f"({n_errors} of {len(blocks)})</label>\n<main>{''.join(blocks)}</main>"
    )
    return page(
        f"{report['data']}: gold versus predicted",
        body,
        palette,
        EXTRA_CSS + ("" if argument_counts is None else ARGUMENT_CSS),
    )


def argument_table(report: dict, counts: Counter) -> str:
    """Argument outcome counts over the sentences that annotate arguments, beside the harness's labelled F1 (end
    to end: predicted triggers and entities, as the page shows them); they add up to its n_gold and n_pred."""
    scores = report.get("arguments", {}).get("end_to_end", {}).get("labelled")
    header = [
        ("arguments", "sentences that annotate arguments"),
        ("F1", "labelled micro F1, end to end: trigger span, entity span and role right"),
        *(
            (OUTCOME_LOOK[outcome][0], "wrong role" if outcome == WRONG_TYPE else OUTCOME_LOOK[outcome][1])
            for outcome in OUTCOMES
        ),
    ]
    cells = [
        "labelled",
        f"{100 * scores['f1']:.2f}" if scores else "–",
        *(str(counts[outcome]) for outcome in OUTCOMES),
    ]
    return (
        '<table class="arg-counts"><tr>'
        + "".join(f'<th title="{escape(title)}">{escape(cell)}</th>' for cell, title in header)
        + "</tr><tr>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        + "</tr></table>"
    )


def write_comparison(
    report: dict, sentences: Sequence[Sentence], predicted: Sequence[WordTags], layers: dict[str, list[str]], path: Path
) -> Path:
    path = Path(path)
    path.write_text(render_comparison(report, sentences, predicted, layers), encoding="utf-8")
    return path
