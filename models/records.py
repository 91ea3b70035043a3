"""The JSON schema of a tagged document, shared by every way out: `python -m models` (JSONL), the HTTP service
(models/serve.py) and the corpus tagger (models/corpus.py).

    {"id": ..., "text": ..., "entities": [span, ...], "events": [span, ...], "arguments": [...]}

A span is {"label", "start", "end", "text", "score"}, its offsets into "text"; "arguments" is present for a
checkpoint with roles only; "id" where the document has one (the service's records have none).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type hints only: `python -m models --help` imports this module and must not load torch
    from models.spans import Span
    from models.tagger import Doc


def span_record(span: Span) -> dict:
    """A span as JSON: label, start, end (character offsets into the document's text), text, score."""
    # spelled out rather than dataclasses.asdict, which deep-copies every field: the service builds these on its
    # event loop, for every span of every response
    return {"label": span.label, "start": span.start, "end": span.end, "text": span.text, "score": span.score}


def doc_record(doc: Doc, layers: list[str], arguments: bool = False) -> dict:
    """A document's text and its spans per layer; with `arguments` (a checkpoint with roles) also each event's
    participants, their ends written as in the layers' lists, so an argument finds its spans by equality."""
    record = {"text": doc.text}
    for layer in layers:
        record[layer] = [span_record(span) for span in doc.layer(layer)]
    if arguments:
        record["arguments"] = [
            {
                "event": span_record(argument.event),
                "entity": span_record(argument.entity),
                "role": argument.role,
                "score": argument.score,
            }
            for argument in doc.arguments
        ]
    return record


def to_record(document_id, doc: Doc, layers: list[str], arguments: bool = False) -> dict:
    """One JSONL record: the document's id, then doc_record."""
    return {"id": document_id, **doc_record(doc, layers, arguments)}


def json_bytes(record) -> bytes:
    """A record as UTF-8 JSON. A text may hold lone surrogates (JSON's \\ud800 escapes decode to them, and the Tagger
    tags them), which UTF-8 cannot carry: such a record is written with every non-ASCII character escaped."""
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record, separators=(",", ":")).encode("ascii")


def json_type(value) -> str:
    """What a JSON value is, in words, for error messages: "a string", "an array", "null"."""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
