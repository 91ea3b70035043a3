"""Long documents: time per 1,000 words, peak memory and found entities as one article grows from 1k to 50k words.

    python -m bench.long_documents --checkpoint runs/e5-small-joint/model
    python -m bench.long_documents --sizes 1000,5000      # a quick look

Each article is ANERcorp test sentences in order (starting over at the end, for 50k words), PARAGRAPH of them
to a paragraph, paragraphs separated by a blank line. Each size is tagged in a child process of its own
(peak RSS = that child's VmHWM), after a warm-up text. The same sentences are also tagged one
text per sentence, and every span found that way must be found in the article at the same place (offsets
shifted by where the sentence sits in the article); the benchmark lists any that is not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.common import (
    DEFAULT_CHECKPOINT,
    check_checkpoint,
    command_line,
    emit,
    machine,
    markdown_table,
    run_child,
    write_result,
)
from models.errors import reports_user_errors

SIZES = (1000, 5000, 10000, 50000)
PARAGRAPH = 5  # sentences per paragraph
FLAT = 1.3  # the largest time per 1,000 words may be at most this times the smallest


def article_sizes(value: str) -> list[int]:
    """--sizes: whole numbers of words, comma-separated (argparse reports a value int() refuses)."""
    sizes = sorted(int(size) for size in value.split(",") if size)
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give one or more sizes of at least 1 word")
    return sizes


def anercorp_texts() -> list[str]:
    from corpora.reader import data_root, load_split

    return [" ".join(sentence.words) for sentence in load_split("anercorp:test", data_root())]


def build_article(sentences: list[str], words: int) -> tuple[str, list[tuple[int, int]]]:
    """An article of at least `words` words and, for each sentence in it, (index in `sentences`, start offset)."""
    parts, layout, position, count = [], [], 0, 0
    while count < words:
        index = len(layout) % len(sentences)
        if layout:
            separator = "\n\n" if len(layout) % PARAGRAPH == 0 else " "
            parts.append(separator)
            position += len(separator)
        layout.append((index, position))
        parts.append(sentences[index])
        position += len(sentences[index])
        count += len(sentences[index].split())
    return "".join(parts), layout


def span_keys(doc) -> list[tuple[str, str, int, int]]:
    return [(span.layer, span.label, span.start, span.end) for span in doc.spans]


# ------------------------------------------------------------------------------------------- children


def tag_article(checkpoint: Path, words: int) -> dict:
    from bench.common import peak_rss_mb
    from models import Tagger

    sentences = anercorp_texts()
    article, _ = build_article(sentences, words)
    tagger = Tagger.load(checkpoint, device="cpu")
    tagger(" ".join(sentences[:32]))  # warm-up
    seconds = []
    for _ in range(3 if words <= 10000 else 1):  # short articles: best of three
        started = time.perf_counter()
        doc = tagger(article)
        seconds.append(time.perf_counter() - started)
    return {
        "target": words,
        "words": len(article.split()),
        "characters": len(article),
        "seconds": min(seconds),
        "spans": span_keys(doc),
        "peak_rss_mb": peak_rss_mb(),
    }


def tag_sentences(checkpoint: Path, words: int) -> dict:
    """Every sentence the largest article uses, each as a text of its own."""
    from bench.common import peak_rss_mb
    from models import Tagger

    sentences = anercorp_texts()
    _, layout = build_article(sentences, words)
    used = sorted({index for index, _ in layout})
    tagger = Tagger.load(checkpoint, device="cpu")
    started = time.perf_counter()
    docs = tagger.tag([sentences[index] for index in used])
    seconds = time.perf_counter() - started
    return {
        "spans": {index: span_keys(doc) for index, doc in zip(used, docs)},
        "seconds": seconds,
        "words": sum(len(sentences[index].split()) for index in used),
        "peak_rss_mb": peak_rss_mb(),
    }


# ------------------------------------------------------------------------------------------- parent


def missing_spans(article: str, layout: list[tuple[int, int]], reference: dict, found: list) -> dict[str, list]:
    """Per layer, the reference spans (shifted to their place in the article) that the article's tagging lacks."""
    found = {tuple(span) for span in found}
    missing: dict[str, list] = {}
    expected: dict[str, int] = {}
    for index, offset in layout:
        for layer, label, start, end in reference[str(index)]:
            expected[layer] = expected.get(layer, 0) + 1
            key = (layer, label, start + offset, end + offset)
            if key not in found:
                missing.setdefault(layer, []).append({"sentence": index, "span": key, "text": article[key[2] : key[3]]})
    return {"expected": expected, "missing": missing}


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_documents", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="tagger checkpoint")
    parser.add_argument(
        "--sizes",
        type=article_sizes,
        default=",".join(str(size) for size in SIZES),
        help="comma-separated article sizes in words (default %(default)s)",
    )
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # child: tag one article
    parser.add_argument("--reference", type=int, help=argparse.SUPPRESS)  # child: tag its sentences one by one
    args = parser.parse_args(argv)
    if args.size:
        emit(tag_article(args.checkpoint, args.size))
        return 0
    if args.reference:
        emit(tag_sentences(args.checkpoint, args.reference))
        return 0

    checkpoint = check_checkpoint(args.checkpoint)
    command = command_line("bench.long_documents", argv)
    common = ["--checkpoint", str(checkpoint)]
    reference = run_child("bench.long_documents", ["--reference", str(max(args.sizes)), *common])
    results = {size: run_child("bench.long_documents", ["--size", str(size), *common]) for size in args.sizes}
    sentences = anercorp_texts()
    rows, checks = [], {}
    per_thousand = {}
    for size, result in results.items():
        article, layout = build_article(sentences, size)
        checks[size] = missing_spans(article, layout, reference["spans"], result["spans"])
        per_thousand[size] = 1000 * result["seconds"] / result["words"]
        missing = checks[size]["missing"]
        rows.append(
            [
                f"{size:,}",
                f"{result['words']:,}",
                f"{result['seconds']:.1f}",
                f"{per_thousand[size]:.2f}",
                f"{result['words'] / result['seconds']:,.0f}",
                f"{result['peak_rss_mb']:,.0f}",
                f"{len(missing.get('entities', []))} of {checks[size]['expected'].get('entities', 0):,}",
                f"{len(missing.get('events', []))} of {checks[size]['expected'].get('events', 0):,}",
            ]
        )
    ratio = max(per_thousand.values()) / min(per_thousand.values())
    table = markdown_table(
        [
            "article",
            "words",
            "seconds",
            "s per 1,000 words",
            "words/s",
            "peak RSS MB",
            "entities missing",
            "events missing",
        ],
        rows,
        right={1, 2, 3, 4, 5},
    )
    lines = [
        f"Long documents, {checkpoint} ({time.strftime('%Y-%m-%d %H:%M')}): ANERcorp test sentences in order, "
        f"{PARAGRAPH} to a paragraph.",
        "",
        f"`{command}`",
        "",
        table,
        "",
        f"Time per 1,000 words, largest over smallest: {ratio:.2f} (target ≤ {FLAT}: "
        f"{'met' if ratio <= FLAT else 'NOT met'}). Sentence by sentence (one text each, "
        f"{reference['words']:,} words): {1000 * reference['seconds'] / reference['words']:.2f} s per 1,000 "
        f"words, "
        f"peak RSS {reference['peak_rss_mb']:,.0f} MB.",
        f"Machine: {machine()}.",
        "Peak RSS: VmHWM of the size's own child process (model included). "
        "Missing: spans that tagging each sentence alone finds but the article's tagging does not, at the "
        "same offsets, label and layer.",
    ]
    for size, check in checks.items():
        for layer, missing in check["missing"].items():
            lines += ["", f"{size:,} words, {layer}: {len(missing)} missing"]
            lines += [f"- sentence {item['sentence']}: {item['span']} {item['text']!r}" for item in missing[:10]]
    text = "\n".join(lines)
    print(text)
    data = {
        "results": {
            size: {key: value for key, value in result.items() if key != "spans"} for size, result in results.items()
        },
        "checks": checks,
        "ratio": ratio,
        "machine": machine(),
        "command": command,
    }
    print(f"\nwritten: {write_result('long_documents', text, data)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
