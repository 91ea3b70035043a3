"""Gold versus predicted spans of an evaluated split, as one self-contained HTML page.

Each sentence shows two lines, right to left: gold spans, then predicted spans, coloured by type as in
models/html.py. Every span is marked with its outcome (eval/spans.py): correct, wrong type, missed (gold
line only) or spurious (predicted line only), each with its own outline style and symbol.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape
from pathlib import Path

from eval.spans import CORRECT, MISSED, OUTCOMES, SPURIOUS, WRONG_TYPE, match_spans
from models.html import Palette, legend, page, render_text
from models.tagger import Span, WordTags
from train.corpora import Sentence

# outcome -> (symbol, words, outline colour, outline style); style and symbol differ, not colour alone
OUTCOME_LOOK = {
    CORRECT: ("✓", "correct", "#1a7f37", "solid"),
    WRONG_TYPE: ("≠", "wrong type", "#8250df", "double"),
    MISSED: ("✗", "missed", "#cf222e", "dashed"),
    SPURIOUS: ("+", "spurious", "#bc4c00", "dotted"),
}

EXTRA_CSS = "\n".join(
    f"mark.o-{outcome},.outcome.o-{outcome}{{outline:{'3px' if style == 'double' else '2px'} {style} {colour};"
    f"outline-offset:1px}}\n"
    f'mark.o-{outcome}::before{{content:"{symbol}";color:{colour}}}'
    for outcome, (symbol, _, colour, style) in OUTCOME_LOOK.items()) + """
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


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence as text, words separated by one space, with each word's character offsets."""
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), offsets


def compare_sentence(sentence: Sentence, predicted: WordTags, layers: Sequence[str]
                     ) -> tuple[str, list[Span], list[Span], dict[Span, str]]:
    """Text, gold spans, predicted spans and each span's outcome, for the layers the sentence annotates."""
    text, offsets = join_words(sentence.words)
    gold_spans, predicted_spans, outcomes = [], [], {}
    for layer in layers:
        if layer not in sentence.tags:
            continue
        scores = predicted.scores[layer]
        for match in match_spans(sentence.tags[layer], predicted.tags[layer]):
            start, end = offsets[match.first][0], offsets[match.end - 1][1]
            if match.gold is not None:
                span = Span(layer, match.gold, start, end, text[start:end], 1.0)
                gold_spans.append(span)
                outcomes[span] = match.outcome
            if match.predicted is not None:
                score = sum(scores[match.first:match.end]) / (match.end - match.first)
                span = Span(layer, match.predicted, start, end, text[start:end], round(score, 4))
                predicted_spans.append(span)
                outcomes[span] = match.outcome
    return text, gold_spans, predicted_spans, outcomes


def _decorator(outcomes: dict[Span, str], gold_side: bool, counterparts: dict[tuple, str]):
    def decorate(span: Span) -> tuple[str, str]:
        outcome = outcomes[span]
        words = OUTCOME_LOOK[outcome][1]
        if outcome == WRONG_TYPE:
            other = counterparts[(span.layer, span.start, span.end)]
            words = f"wrong type: gold {span.label if gold_side else other}, predicted {other if gold_side else span.label}"
        score = "" if gold_side else f" · {span.score:.2f}"
        return f"o-{outcome}", f"{span.label} · {words}{score}"
    return decorate


def render_comparison(report: dict, sentences: Sequence[Sentence], predicted: Sequence[WordTags],
                      layers: dict[str, list[str]]) -> str:
    """The whole page: scores and outcome counts per layer, legends, then every sentence (errors flagged)."""
    palette = Palette(layers)
    scored = [layer for layer in layers if layer in report["layers"]]
    counts = {layer: Counter() for layer in scored}
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
        errors = any(outcome != CORRECT for outcome in outcomes.values())
        n_errors += errors
        blocks.append(
            f'<section class="sent{" err" if errors else ""}" id="s{number}">'
            f'<span class="side">#{number} gold</span>'
            f'<div class="text gold" dir="rtl" lang="ar">'
            f'{render_text(text, gold, palette, _decorator(outcomes, True, guessed_types))}</div>'
            f'<span class="side">predicted</span>'
            f'<div class="text predicted" dir="rtl" lang="ar">'
            f'{render_text(text, guessed, palette, _decorator(outcomes, False, gold_types))}</div></section>')
    # outcome columns headed by their symbol alone, so the table fits a phone
    header = [("layer", ""), ("F1", "micro F1"), ("strict", "strict IOB2 micro F1"),
              *((OUTCOME_LOOK[outcome][0], OUTCOME_LOOK[outcome][1]) for outcome in OUTCOMES)]
    rows = ["<tr>" + "".join(f'<th title="{escape(title)}">{escape(cell)}</th>' for cell, title in header) + "</tr>"]
    for layer in scored:
        scores = report["layers"][layer]
        cells = [layer, f"{100 * scores['micro_f1']:.2f}", f"{100 * scores['strict_micro_f1']:.2f}",
                 *(str(counts[layer][outcome]) for outcome in OUTCOMES)]
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    outcome_keys = "".join(f'<span class="outcome o-{outcome}">{symbol} {words}</span>'
                           for outcome, (symbol, words, _, _) in OUTCOME_LOOK.items())
    body = (f'<p class="note">{report["n_sentences"]} sentences, decoding {escape(str(report["decoding"]))}; '
            f"spans match when their boundaries are identical, so a boundary error shows as one missed and one "
            f"spurious span.</p><div class=\"scores\"><table>{''.join(rows)}</table></div>"
            f'<div class="legend"><h3>outcome</h3>{outcome_keys}</div>{legend(palette, gold_spans, counted="gold spans")}'
            f'<input type="checkbox" id="errors-only"><label for="errors-only"> only sentences with an error '
            f"({n_errors} of {len(blocks)})</label>\n<main>{''.join(blocks)}</main>")
    return page(f"{report['data']}: gold versus predicted", body, palette, EXTRA_CSS)


def write_comparison(report: dict, sentences: Sequence[Sentence], predicted: Sequence[WordTags],
                     layers: dict[str, list[str]], path: Path) -> Path:
    path = Path(path)
    path.write_text(render_comparison(report, sentences, predicted, layers), encoding="utf-8")
    return path
