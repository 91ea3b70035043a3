"""Tagged text as one self-contained HTML page: Arabic right to left, spans coloured by type, a legend.

No scripts, no web fonts, nothing fetched: the file opens offline and fits a phone's width. The first
layer (entities) is drawn as a filled highlight, the others (event triggers) as a coloured underline, so
the two stay apart where they overlap. With event arguments, each article is followed by a list of its
events and their participants, and the tooltip of a trigger (an entity) names its participants (its
events). eval/html.py builds its gold-versus-predicted view on these pieces.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from html import escape
from pathlib import Path

from models.labels import types_of
from models.tagger import Doc, Span

# Golden-angle steps keep neighbouring colour indices far apart on the hue circle.
HUE_STEP = 137.508

BASE_CSS = """
*{box-sizing:border-box}
body{margin:0 auto;max-width:50rem;padding:1rem;color:#1f2328;background:#fff;
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
h1{font-size:1.3rem;margin:.2rem 0 .6rem}
h2{font-size:1rem;margin:0 0 .3rem;overflow-wrap:anywhere}
.note{color:#59636e;font-size:.85rem}
.text,.events{font-family:"Noto Naskh Arabic","Noto Sans Arabic","Geeza Pro","Arial","DejaVu Sans",serif}
.text{font-size:1.3rem;line-height:2.4;white-space:pre-wrap;overflow-wrap:anywhere;text-align:start}
mark.s{color:inherit;background:var(--bg);border-radius:.3em;padding:.05em .2em;
 -webkit-box-decoration-break:clone;box-decoration-break:clone}
mark.s.line{background:none;border-radius:0;padding:0;border-bottom:.2em solid var(--fg)}
mark.s::after{content:attr(data-label);direction:ltr;unicode-bidi:isolate;color:var(--fg);
 font:600 .55rem/1 system-ui,sans-serif;vertical-align:.55em;margin-inline-start:.15em}
mark.s.more::after{content:none}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;margin:.5rem 0 1rem;padding:.5rem .7rem;
 background:#f6f8fa;border-radius:.4rem;font-size:.85rem}
.legend h3{font-size:.85rem;margin:0;flex-basis:100%}
.legend .part{white-space:nowrap}
.legend .sub{color:#59636e}
.swatch{display:inline-block;width:1.6em;height:1em;vertical-align:-.15em;margin-inline-end:.3em;
 border-radius:.2em;background:var(--bg)}
.swatch.line{background:none;border-radius:0;border-bottom:.25em solid var(--fg)}
article{border-top:1px solid #d1d9e0;padding:.8rem 0}
.events{margin:.3rem 0 0;padding-inline-start:1.2rem;font-size:1.1rem;line-height:1.9;overflow-wrap:anywhere}
.events ul{margin:0;padding-inline-start:.8rem;list-style:none}
.chip{background:var(--bg);border-radius:.3em;padding:0 .2em}
.chip.line{background:none;border-radius:0;padding:0;border-bottom:.15em solid var(--fg)}
.events .sub,.role{font:.75rem system-ui,sans-serif;color:#59636e}
.role{display:inline-block;min-width:4.5em;font-weight:600}
@media (max-width:30rem){body{padding:.6rem}.text{font-size:1.15rem}.events{font-size:1rem}}
"""


def colour_group(kind: str) -> str:
    """`Conflict.Attack` -> `Conflict`: event subtypes share their top type's colour (33 hues would blur)."""
    return kind.split(".", 1)[0]


class Palette:
    """One colour per (layer, colour group), in the order of the checkpoint's labels, so every report agrees."""

    def __init__(self, layers: dict[str, list[str]]):
        self.layers = list(layers)
        self.groups: dict[tuple[str, str], int] = {}
        for layer, labels in layers.items():
            for kind in types_of(labels):
                self.index(layer, kind)

    def index(self, layer: str, kind: str) -> int:
        # A type the checkpoint does not know (gold of another corpus) still gets a colour of its own.
        if layer not in self.layers:
            self.layers.append(layer)
        return self.groups.setdefault((layer, colour_group(kind)), len(self.groups))

    def style(self, layer: str) -> str:
        return "fill" if self.layers.index(layer) == 0 else "line"

    def classes(self, layer: str, kind: str) -> str:
        return f"s {self.style(layer)} k{self.index(layer, kind)}"

    def css(self) -> str:
        return "\n".join(
            f".k{index}{{--bg:hsl({index * HUE_STEP % 360:.0f} 80% 86%);"
            f"--fg:hsl({index * HUE_STEP % 360:.0f} 75% 33%)}}"
            for index in sorted(self.groups.values())
        )


def nested_pieces(spans: Sequence[Span]) -> list[tuple[int, int, int]]:
    """(start, end, span index) in document order, outer before inner, cut so that HTML elements nest.

    Spans of one layer never overlap, but an entity and a trigger may cross: the later one is cut at the
    end of the earlier and continues after it as a second piece.
    """
    queue = [(span.start, -span.end, index) for index, span in enumerate(spans) if span.end > span.start]
    heapq.heapify(queue)
    pieces, open_ends = [], []
    while queue:
        start, negative_end, index = heapq.heappop(queue)
        end = -negative_end
        while open_ends and open_ends[-1] <= start:
            open_ends.pop()
        if open_ends and end > open_ends[-1]:
            heapq.heappush(queue, (open_ends[-1], -end, index))
            end = open_ends[-1]
        pieces.append((start, end, index))
        open_ends.append(end)
    return pieces


def default_decoration(span: Span) -> tuple[str, str]:
    return "", f"{span.label} · {span.score:.2f}"


def render_text(
    text: str, spans: Sequence[Span], palette: Palette, decorate: Callable[[Span], tuple[str, str]] = default_decoration
) -> str:
    """`text` as HTML with each span a <mark> holding its layer, label and character offsets as data-attributes.

    `decorate(span)` gives extra classes and the tooltip. The label is drawn by CSS (::after), so copying
    the text copies the article alone.
    """
    out, open_ends, position = [], [], 0

    def close() -> None:
        nonlocal position
        end = open_ends.pop()
        out.append(escape(text[position:end], quote=False) + "</mark>")
        position = end

    for start, end, index in nested_pieces(spans):
        while open_ends and open_ends[-1] <= start:
            close()
        out.append(escape(text[position:start], quote=False))
        position = start
        span = spans[index]
        extra, title = decorate(span)
        # more: a piece that the next one continues (no label yet); cont: a piece that continues one
        classes = " ".join(
            filter(
                None,
                [
                    palette.classes(span.layer, span.label),
                    extra,
                    "" if end == span.end else "more",
                    "" if start == span.start else "cont",
                ],
            )
        )
        out.append(
            f'<mark class="{classes}" data-layer="{escape(span.layer)}" data-label="{escape(span.label)}" '
            f'data-start="{span.start}" data-end="{span.end}" title="{escape(title)}">'
        )
        open_ends.append(end)
    while open_ends:
        close()
    out.append(escape(text[position:], quote=False))
    return "".join(out)


def legend(palette: Palette, spans: Iterable[Span], counted: str = "spans") -> str:
    """Every colour with its group and how many `spans` it marks; under a group, the subtypes seen."""
    counts = Counter((span.layer, span.label) for span in spans)
    by_group: dict[tuple[str, str], Counter] = {key: Counter() for key in palette.groups}
    for (layer, label), count in counts.items():
        palette.index(layer, label)
        by_group.setdefault((layer, colour_group(label)), Counter())[label] = count
    parts = []
    for layer in palette.layers:
        parts.append(f'<h3>{escape(layer)} <span class="sub">({escape(counted)})</span></h3>')
        for (group_layer, group), labels in by_group.items():
            if group_layer != layer:
                continue
            index = palette.groups[(layer, group)]
            # a key wraps between its parts, never inside one: a group with many subtypes (Justice has 13) is
            # wider than a phone, and than the page
            subtypes = [
                f'<span class="part">{escape(label.split(".", 1)[1])} {count}</span>'
                for label, count in labels.most_common()
                if "." in label
            ]
            detail = f' <span class="sub">({", ".join(subtypes)})</span>' if subtypes else ""
            swatch = f'<span class="swatch {palette.style(layer)} k{index}"></span>'
            parts.append(
                f'<span class="key"><span class="part">{swatch}{escape(group)} {sum(labels.values())}</span>'
                f"{detail}</span>"
            )
    return f'<div class="legend">{"".join(parts)}</div>'


def page(title: str, body: str, palette: Palette, extra_css: str = "") -> str:
    """A whole HTML document: inline CSS only, viewport set for phones."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f"<style>{BASE_CSS}{palette.css()}\n{extra_css}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def argument_decoration(doc: Doc) -> Callable[[Span], tuple[str, str]]:
    """default_decoration with each trigger's participants and each entity's events added to the tooltip."""

    def decorate(span: Span) -> tuple[str, str]:
        extra, title = default_decoration(span)
        lines = [
            f"{argument.role}: {argument.entity.text} · {argument.score:.2f}" for argument in doc.arguments_of(span)
        ]
        lines += [
            f"{argument.role} of {argument.event.text} ({argument.event.label}) · {argument.score:.2f}"
            for argument in doc.arguments
            if argument.entity == span
        ]
        return extra, "\n".join([title, *lines])

    return decorate


def chip(span: Span, palette: Palette) -> str:
    """A span's text coloured as its mark is, outside the article (not a <mark>: the marks are the article's)."""
    return f'<span class="chip {palette.classes(span.layer, span.label)}">{escape(span.text)}</span>'


def event_list(doc: Doc, palette: Palette) -> str:
    """Each event of `doc`, its trigger and subtype, and under it one line per participant: role, entity, score."""
    items = []
    for event in doc.events:
        participants = [
            f'<li><bdi class="role" dir="ltr">{escape(argument.role)}</bdi> '
            f"{chip(argument.entity, palette)} "
            f'<bdi class="sub" dir="ltr">{escape(argument.entity.label)} · {argument.score:.2f}</bdi></li>'
            for argument in doc.arguments_of(event)
        ]
        participants = participants or ['<li><bdi class="sub" dir="ltr">no participants found</bdi></li>']
        items.append(
            f'<li>{chip(event, palette)} <bdi class="sub" dir="ltr">{escape(event.label)}</bdi>'
            f"<ul>{''.join(participants)}</ul></li>"
        )
    return f'<ul class="events" dir="rtl" lang="ar">{"".join(items)}</ul>' if items else ""


def render_docs(
    named_docs: Sequence[tuple[str, Doc]],
    layers: dict[str, list[str]],
    title: str,
    note: str = "",
    arguments: bool = False,
) -> str:
    """The tagged articles, one <article> each, after a legend of the types found; with `arguments` (a checkpoint
    with roles) each article's events with their participants."""
    palette = Palette(layers)
    articles = []
    for name, doc in named_docs:
        counts = ", ".join(
            [
                *(f"{len(doc.layer(layer))} {layer}" for layer in layers),
                *([f"{len(doc.arguments)} arguments"] if arguments else []),
            ]
        )
        decorate = argument_decoration(doc) if arguments else default_decoration
        articles.append(
            f'<article><h2 dir="auto">{escape(name)}</h2><div class="note">{counts}</div>'
            f'<div class="text" dir="rtl" lang="ar">{render_text(doc.text, doc.spans, palette, decorate)}'
            f"</div>{event_list(doc, palette) if arguments else ''}</article>"
        )
    header = f'<p class="note">{escape(note)}</p>' if note else ""
    spans = [span for _, doc in named_docs for span in doc.spans]
    return page(title, header + legend(palette, spans) + "\n".join(articles), palette)


def write_docs_html(
    path: Path,
    named_docs: Sequence[tuple[str, Doc]],
    layers: dict[str, list[str]],
    title: str,
    note: str = "",
    arguments: bool = False,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_docs(named_docs, layers, title, note, arguments), encoding="utf-8")
    return path
