"""Tag raw Arabic text with a checkpoint:

python -m models --checkpoint DIR FILE... [--out OUT.jsonl] [--html OUT.html]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import UserError, reports_user_errors, user_path
from models.labels import COLUMNS_HEADER, DOCUMENT_START, OUTSIDE
from models.names import PRECISIONS
from models.records import to_record
from models.text import decode_utf8, split_sentences

if TYPE_CHECKING:
    from models.tagger import Doc, Span

# a participant's role stands under its event's label, indented by this much
ROLE_INDENT = "  "


class InputError(UserError, ValueError):
    """An input file that cannot be read as documents."""


def looks_like_cp1256(data: bytes, bad_offset: int) -> bool:
    """Whether undecodable bytes are likely Arabic saved as Windows-1256: nothing before the bad byte was
    multi-byte UTF-8 (a UTF-8 file broken further on is not a cp1256 one), and as cp1256 most of the non-ASCII
    characters are Arabic letters."""
    if not data[:bad_offset].isascii():
        return False
    non_ascii = [char for char in data.decode("cp1256", errors="replace") if not char.isascii()]
    return sum("\u0600" <= char <= "\u06ff" for char in non_ascii) * 2 > len(non_ascii)


def read_text(path: Path) -> str:
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give the .txt or .jsonl files in it") from None
    except OSError as err:  # not readable by this user, a device error
        raise InputError(f"{path}: {err.strerror or err}") from None
    try:
        return decode_utf8(data)
    except UnicodeDecodeError as err:
        hint = ""
        if looks_like_cp1256(data, err.start):
            file = "FILE" if str(path) == "-" else path
            hint = f" (Arabic text saved as Windows-1256? convert it: iconv -f cp1256 -t utf-8 {file} > {file}.utf8)"
        raise InputError(f"{path}: not UTF-8 at byte offset {err.start}{hint}") from None


def read_inputs(paths: list[Path]) -> list[tuple[str, str]]:
    """(id, text) pairs: a .txt file is one document; a .jsonl file holds one {"text": ..., "id": ...} per line."""
    documents = []
    for path in paths:
        text = read_text(path)
        if path.suffix != ".jsonl":
            documents.append((str(path), text))
            continue
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{line_number}: invalid JSON: {err.msg}") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise InputError(f'{path}:{line_number}: expected an object with a string "text" field')
            documents.append((str(record.get("id", f"{path}:{line_number}")), record["text"]))
    return documents


def conll_header(layers: list[str]) -> str:
    """Names the columns once, as a comment line, so the file says which tag column is which layer."""
    return f"{COLUMNS_HEADER} token " + " ".join(layers) + "\n"


def to_conll(document_id: str, doc: Doc, layers: list[str]) -> str:
    """One document as CoNLL: a -DOCSTART- line with its id and a blank line, then one word per line with one
    IOB2 tag column per layer, a blank line after each sentence. The tags are rebuilt from the doc's spans, so
    the text is tagged once for every output."""
    sentences = split_sentences(doc.text)  # the split Tagger.tag made: the spans begin and end on these words
    words = [word for sentence in sentences for word in sentence]
    first_at = {word.start: index for index, word in enumerate(words)}
    last_at = {word.end: index for index, word in enumerate(words)}
    columns = []
    for layer in layers:
        tags = [OUTSIDE] * len(words)
        for span in doc.layer(layer):
            first, last = first_at[span.start], last_at[span.end]
            tags[first : last + 1] = [f"B-{span.label}"] + [f"I-{span.label}"] * (last - first)
        columns.append(iter(tags))
    # one line whatever the id holds: a JSONL id may carry tabs or newlines
    blocks = [f"{DOCUMENT_START} {' '.join(document_id.split())}\n"]
    for sentence in sentences:
        blocks.append(
            "".join("\t".join([word.text, *(next(column) for column in columns)]) + "\n" for word in sentence)
        )
    return "\n".join(blocks) + "\n"


def offsets(span: Span) -> str:
    return f"[{span.start}:{span.end}]"


def show(document_id: str, doc: Doc, layers: list[str]) -> str:
    """A readable summary: each layer's spans, one per line, in text order; under each event its participants.

    Columns: label (or role), offsets, score, each as wide as its longest entry in the document, then the text:
    last, because its width on screen is not its length (tashkeel takes none) and right-to-left text would
    carry the columns after it out of line."""
    spans = [span for layer in layers for span in doc.layer(layer)]
    participants = [argument for span in spans for argument in doc.arguments_of(span)]
    label_width = max(
        [*(len(span.label) for span in spans), *(len(ROLE_INDENT + argument.role) for argument in participants)],
        default=0,
    )
    offsets_width = max(
        (len(offsets(span)) for span in [*spans, *(argument.entity for argument in participants)]), default=0
    )

    def row(label: str, span: Span, score: float) -> str:
        return f"   {label:<{label_width}}  {offsets(span):<{offsets_width}}  {score:.2f}  {span.text}"

    lines = [f"== {document_id}"]
    for layer in layers:
        layer_spans = doc.layer(layer)
        lines.append(f"-- {layer}: {len(layer_spans)}")
        for span in layer_spans:
            lines.append(row(span.label, span, span.score))
            lines.extend(
                row(ROLE_INDENT + argument.role, argument.entity, argument.score) for argument in doc.arguments_of(span)
            )
    return "\n".join(lines)


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description="Tag raw Arabic text: each input .txt file is one document, each line of a .jsonl file one "
        '{"text": ..., "id": ...} record. Writes JSONL, one record per document with its spans '
        'per layer (text, label, character offsets start/end into the record\'s "text" field, '
        "which is the input without a leading byte order mark (BOM), and score) and, for a "
        'checkpoint with roles, "arguments": each {event, entity, role, score}, its event and entity '
        "written as in the layers' lists; with --html also a self-contained HTML page of the "
        "articles, right to left, spans coloured by type, each event with its participants.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, help=".txt or .jsonl files, or - for standard input")
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a checkpoint folder, e.g. runs/e5-small-offline/model"
    )
    parser.add_argument("--out", type=Path, default=None, help="output file, JSONL or CoNLL (default: standard output)")
    parser.add_argument(
        "--format",
        choices=["jsonl", "conll"],
        default="jsonl",
        help='jsonl: one record per document with spans per layer; conll: a "# columns: token '
        'LAYER..." line, then per document "-DOCSTART- ID" and a blank line, then '
        "word<TAB>tag per layer, a blank line after each sentence",
    )
    parser.add_argument(
        "--html",
        type=Path,
        default=None,
        help="also write the tagged documents as one self-contained HTML page (no network needed)",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="also print the spans readably, each event with its participants (to standard error with no --out)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="windows (sentences, or parts of long ones) per forward pass (default: 32)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): bf16 where the CPU has AMX or AVX512-BF16 or on a GPU, else fp32; "
        "fp32: exact; bf16: about 2x faster on such CPUs, same F1 in bench.inference; "
        "int8: faster still, about 3 F1 points lower",
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    # only now: --help and a bad option answer without waiting for torch
    from models.html import write_docs_html
    from models.tagger import Tagger

    documents = read_inputs(args.inputs)
    tagger = Tagger.load(args.checkpoint, batch_size=args.batch_size, precision=args.precision)
    layers = list(tagger.layers)
    docs = tagger.tag([text for _, text in documents])
    if args.format == "conll":
        output = conll_header(layers) + "".join(
            to_conll(document_id, doc, layers) for (document_id, _), doc in zip(documents, docs)
        )
    else:
        records = (
            to_record(document_id, doc, layers, arguments=bool(tagger.roles))
            for (document_id, _), doc in zip(documents, docs)
        )
        output = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if args.out:
        with user_path(args.out):
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    if args.html:
        participants = ", over an event for its participants" if tagger.roles else ""
        with user_path(args.html):
            write_docs_html(
                args.html,
                list(zip([document_id for document_id, _ in documents], docs)),
                tagger.layers,
                title=f"Tagged with {args.checkpoint}",
                note=f"{len(docs)} documents; hover over a span for its score{participants}.",
                arguments=bool(tagger.roles),
            )
    # with no --out, standard output carries the tags: everything else goes to standard error
    report = sys.stdout if args.out else sys.stderr
    if args.show:
        for (document_id, _), doc in zip(documents, docs):
            print(show(document_id, doc, layers), file=report)
    if args.out:
        print(f"written: {args.out}", file=report)
    if args.html:
        print(f"written: {args.html}", file=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
