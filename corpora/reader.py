"""Corpus readers: CoNLL files -> Sentences, with tags per layer, normalised to IOB2, and event arguments.

A corpus is described in configs/corpora.yaml (files, columns per layer, type renames, arguments files),
so a new corpus or label scheme needs config, not code.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from models.arguments import ENTITY_LAYER, TRIGGER_LAYER, WordArgument
from models.errors import UserError
from models.labels import COLUMNS_HEADER, DOCUMENT_START, TagError, chunks, split_tag, to_iob2
from models.text import decode_utf8

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "ARABIC_NEWS_DATA"
DEFAULT_DATA_ROOT = "../shared/data"
CORPORA_FILE = PROJECT_ROOT / "configs" / "corpora.yaml"


class CorpusError(UserError, ValueError):
    """Bad corpus input (the message starts with file:line), or a corpus or split configs/corpora.yaml lacks."""


class DataNotFound(UserError, FileNotFoundError):
    """The data folder, or a file of a corpus, is not where the settings say."""


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    # layer -> one IOB2 tag per word; a layer the corpus does not annotate is absent (not all-O)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the text it comes from (its file): neighbouring sentences of one document lend each other context;
    # None: it stands alone
    document: str | None = None
    # None: the corpus does not annotate arguments (their loss is masked); (): annotated, it has none
    arguments: tuple[WordArgument, ...] | None = None


def data_root(configured: str | None = None) -> Path:
    """The data folder: the run config's `data_root` if set, else $ARABIC_NEWS_DATA, else ../shared/data.

    A value written in a config or on the command line is the more specific choice, so it beats the
    machine-wide environment variable (which `make` always exports). Relative paths are taken from
    the project root, so it works from any working directory.
    """
    setting, value = ("data_root", configured) if configured else (DATA_ENV, os.environ.get(DATA_ENV))
    if not value:
        setting, value = "the default", DEFAULT_DATA_ROOT
    root = Path(value).expanduser()
    root = root if root.is_absolute() else (PROJECT_ROOT / root).resolve()
    if not root.is_dir():
        raise DataNotFound(
            f"data folder {root} does not exist (set by {setting}). Point the environment variable "
            f"{DATA_ENV} or the run config's `data_root` at the folder that holds anercorp-camellab/ etc."
        )
    return root


def read_conll(
    path: Path, layers: dict[str, int], types: dict[str, dict[str, str]] | None = None, nested: bool = False
) -> list[Sentence]:
    """Read a CoNLL file: token then tag columns, whitespace-separated, blank line between sentences.

    `layers` maps a layer name to its tag column (1 = first after the token); `types` renames
    types per layer (e.g. AQMAR's PER -> PERS). IOB1 and IOB2 are accepted; a chunk-initial
    `I-X` is repaired to `B-X` and counted in the log.
    """
    types = types or {}
    sentences: list[Sentence] = []
    words: list[str] = []
    columns: dict[str, list[str]] = {layer: [] for layer in layers}
    n_columns: int | None = None
    repaired = {layer: 0 for layer in layers}

    def close_sentence() -> None:
        if not words:
            return
        tags = {}
        for layer, raw in columns.items():
            fixed, count = to_iob2(raw)
            repaired[layer] += count
            tags[layer] = tuple(fixed)
        sentences.append(Sentence(tuple(words), tags, str(path)))
        words.clear()
        for raw in columns.values():
            raw.clear()

    if not path.is_file():
        raise DataNotFound(f"CoNLL file {path} does not exist")
    try:
        text = decode_utf8(path.read_bytes())
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 at byte {err.start}") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        # a document boundary, and the column header `python -m models --format conll` writes: no words
        if not fields or fields[0] == DOCUMENT_START or line.startswith(COLUMNS_HEADER):
            close_sentence()
            continue
        where = f"{path}:{line_number}"
        needed = max(layers.values()) + 1
        if nested:  # nested annotation (Wojood): inner layers add columns; the ones read must be there
            if len(fields) < needed:
                raise CorpusError(
                    f"{where}: {len(fields)} columns, but the corpus config reads tag column {needed - 1}"
                )
        elif n_columns is None:
            n_columns = len(fields)
            if n_columns < needed:
                raise CorpusError(f"{where}: {n_columns} columns, but the corpus config reads tag column {needed - 1}")
        if not nested and len(fields) != n_columns:
            raise CorpusError(f"{where}: {len(fields)} columns where the file's first line has {n_columns}: {line!r}")
        words.append(fields[0])
        for layer, column in layers.items():
            tag = fields[column]
            try:
                prefix, kind = split_tag(tag)
            except TagError as err:
                raise CorpusError(f"{where}: {err}") from None
            if kind is not None and kind in types.get(layer, {}):
                tag = f"{prefix}-{types[layer][kind]}"
            columns[layer].append(tag)
    close_sentence()
    for layer, count in repaired.items():
        if count:
            log.info("%s: repaired %d chunk-initial I- tags to B- in layer %s", path, count, layer)
    return sentences


def read_conll_file(path: Path, layers: list[str | None]) -> list[Sentence]:
    """A CoNLL file outside configs/corpora.yaml: the token, then the tag column of each of `layers` in order.

    None in `layers` skips that column; columns after the last layer are ignored. Nothing is renamed and
    no arguments are read (Sentence.arguments stays None, so they are not scored).
    """
    if not path.is_file():
        raise DataNotFound(f"CoNLL file {path} does not exist")
    columns = {layer: column for column, layer in enumerate(layers, start=1) if layer is not None}
    if not columns:
        raise CorpusError(f"{path}: no layer to read (every column is skipped)")
    # checked here so the message names the layers, not "the corpus config" of read_conll
    try:
        text = decode_utf8(path.read_bytes())
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 at byte {err.start}") from None
    first = next(
        ((number, line.split()) for number, line in enumerate(text.splitlines(), start=1) if line.split()), None
    )
    if first is None:
        raise CorpusError(f"{path}: no sentences")
    number, fields = first
    if len(fields) < len(layers) + 1:
        named = ", ".join(layer or "(skipped)" for layer in layers)
        raise CorpusError(
            f"{path}:{number}: {len(fields)} columns, but reading the token and {named} needs {len(layers) + 1}"
        )
    return read_conll(path, columns)


def read_arguments(
    path: Path, sentences: list[Sentence], roles: tuple[str, ...], masked: frozenset[int] = frozenset()
) -> dict[int, tuple[WordArgument, ...]]:
    """Read an arguments file (JSON lines, see the data README) -> {sentence index: its arguments}.

    Only listed sentences are in the result. Every span must be exactly a chunk of its layer in
    `sentences` (the CoNLL file the indices refer to, after IOB2 repair), so a file that drifted
    from its CoNLL file fails here rather than teaching the model wrong pairs. The arguments of
    `masked` sentences (known not to fit their CoNLL spans) are neither checked nor returned.
    """
    if not path.is_file():
        raise DataNotFound(f"arguments file {path} does not exist")
    try:
        text = decode_utf8(path.read_bytes())
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 at byte {err.start}") from None
    listed: dict[int, tuple[WordArgument, ...]] = {}
    first_line: dict[int, int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{where}: not JSON: {err}") from None
        if not (
            isinstance(record, dict) and _is_int(record.get("sentence")) and isinstance(record.get("arguments"), list)
        ):
            raise CorpusError(f"{where}: not an object with an int `sentence` and a list `arguments`: {line[:200]}")
        index = record["sentence"]
        if not 0 <= index < len(sentences):
            raise CorpusError(f"{where}: sentence {index} out of range; the CoNLL file has {len(sentences)} sentences")
        if index in first_line:
            raise CorpusError(f"{where}: sentence {index} listed again (first on line {first_line[index]})")
        first_line[index] = line_number
        if index in masked:
            continue
        sentence = sentences[index]
        if not {TRIGGER_LAYER, ENTITY_LAYER} <= set(sentence.tags):
            raise CorpusError(f"{where}: sentence {index} lacks the {TRIGGER_LAYER!r} or {ENTITY_LAYER!r} layer")
        sentence_chunks = {layer: chunks(list(sentence.tags[layer])) for layer in (TRIGGER_LAYER, ENTITY_LAYER)}
        arguments: list[WordArgument] = []
        pairs: set[tuple[tuple[int, int], tuple[int, int]]] = set()
        for number, item in enumerate(record["arguments"]):
            at = f"{where}: sentence {index}, argument {number}"
            if not isinstance(item, dict):
                raise CorpusError(f"{at}: not an object: {item!r}")
            missing = [key for key in _ARGUMENT_KEYS if key not in item]
            if missing:
                raise CorpusError(f"{at}: missing {', '.join(missing)}")
            spans = {}
            for key, layer in (("trigger", TRIGGER_LAYER), ("entity", ENTITY_LAYER)):
                span = item[key]
                if not (
                    isinstance(span, list)
                    and len(span) == 2
                    and all(map(_is_int, span))
                    and 0 <= span[0] < span[1] <= len(sentence.words)
                ):
                    raise CorpusError(
                        f"{at}: {key} {span!r} is not a span [start, end) of the sentence's {len(sentence.words)} words"
                    )
                first, end = span
                if not any((first, end) == (f, e) for f, e, _ in sentence_chunks[layer]):
                    near = [f"[{f}, {e}) {kind}" for f, e, kind in sentence_chunks[layer] if f < end and first < e]
                    raise CorpusError(
                        f"{at}: {key} [{first}, {end}) is not a span of the {layer!r} column, which "
                        f"has {list(sentence.tags[layer][first:end])} there "
                        f"(spans: {', '.join(near) or 'none'})"
                    )
                words = " ".join(sentence.words[first:end])
                if item[f"{key}_text"] != words:
                    raise CorpusError(
                        f"{at}: {key}_text {item[f'{key}_text']!r} but the sentence has {words!r} at [{first}, {end})"
                    )
                spans[key] = (first, end)
            if item["role"] not in roles:
                raise CorpusError(f"{at}: unknown role {item['role']!r}; known: {list(roles)}")
            (t_first, t_end), (e_first, e_end) = pair = (spans["trigger"], spans["entity"])
            if pair in pairs:
                raise CorpusError(
                    f"{at}: trigger [{t_first}, {t_end}) and entity [{e_first}, {e_end}) are linked twice"
                )
            pairs.add(pair)
            arguments.append(WordArgument(spans["trigger"], spans["entity"], item["role"]))
        listed[index] = tuple(arguments)
    return listed


_ARGUMENT_KEYS = ("trigger", "trigger_text", "entity", "entity_text", "role")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true would pass as 1


def corpus_specs() -> dict:
    return yaml.safe_load(CORPORA_FILE.read_text(encoding="utf-8"))


# `anercorp:train[:25%]`: the first quarter of a split, in file order (the slicing notation of HF datasets)
_FIRST_PERCENT = re.compile(r"^(?P<split>[^\[\]]+)\[:(?P<percent>[0-9]+(?:\.[0-9]+)?)%\]$")


def load_split(name: str, root: Path) -> list[Sentence]:
    """`anercorp:test` -> its sentences. A carved dev split takes the last fraction of its source split.
    `anercorp:train[:25%]` takes the first 25% of a split's sentences (rounded), for learning curves."""
    sliced = _FIRST_PERCENT.match(name)
    if sliced:
        percent = float(sliced["percent"])
        if not 0 < percent <= 100:
            raise CorpusError(f"{name}: the percentage of a split must be above 0 and at most 100")
        sentences = load_split(sliced["split"], root)
        return sentences[: round(len(sentences) * percent / 100)]
    corpus, _, split = name.partition(":")
    specs = corpus_specs()
    if corpus not in specs:
        raise CorpusError(f"unknown corpus {corpus!r} in {name!r}; known: {sorted(specs)} (from {CORPORA_FILE})")
    spec = specs[corpus]
    dev = spec.get("dev")
    splits = sorted(spec["files"]) + (["dev"] if dev else [])
    if split not in splits:
        raise CorpusError(f"unknown split {split!r} of {corpus}; known: {splits}")

    arguments = spec.get("arguments")
    if arguments:
        lacking = [layer for layer in (TRIGGER_LAYER, ENTITY_LAYER) if layer not in spec["layers"]]
        if lacking:
            raise CorpusError(
                f"{corpus} declares an arguments file but its layers lack {lacking} "
                f"(arguments link the two; see {CORPORA_FILE})"
            )
        unlisted = sorted(set(spec["files"]) - set(arguments["files"]))
        if unlisted:
            raise CorpusError(
                f"{corpus}: no arguments file for split {unlisted}; every split of a corpus with "
                f"arguments needs one (see {CORPORA_FILE})"
            )

    def read(split_name: str) -> list[Sentence]:
        sentences = read_conll(
            root / spec["dir"] / spec["files"][split_name], spec["layers"], spec.get("types"), spec.get("nested", False)
        )
        if not arguments:
            return sentences
        # read before any dev carve, so that the file's indices count from the CoNLL file's first sentence
        masked = frozenset(arguments.get("masked", {}).get(split_name, ()))
        listed = read_arguments(
            root / spec["dir"] / arguments["files"][split_name], sentences, tuple(arguments["roles"]), masked
        )
        return [
            replace(sentence, arguments=None if index in masked else listed.get(index, ()))
            for index, sentence in enumerate(sentences)
        ]

    if dev and split in ("dev", dev["from"]):
        source = read(dev["from"])
        n_dev = round(len(source) * dev["last_fraction"])
        return source[len(source) - n_dev :] if split == "dev" else source[: len(source) - n_dev]
    return read(split)
