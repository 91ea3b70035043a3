"""Corpus readers: CoNLL files -> Sentences, with tags per layer, normalised to IOB2.

A corpus is described in configs/corpora.yaml (files, columns per layer, type renames),
so a new corpus or label scheme needs config, not code.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from models.labels import TagError, split_tag, to_iob2
from models.text import decode_utf8

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "ARABIC_NEWS_DATA"
DEFAULT_DATA_ROOT = "../shared/data"
CORPORA_FILE = PROJECT_ROOT / "configs" / "corpora.yaml"


class CorpusError(ValueError):
    """Bad corpus input; the message starts with file:line."""


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    # layer -> one IOB2 tag per word; a layer the corpus does not annotate is absent (not all-O)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the text it comes from (its file): neighbouring sentences of one document lend each other context;
    # None: it stands alone
    document: str | None = None


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
        raise FileNotFoundError(
            f"data folder {root} does not exist (set by {setting}). Point the environment variable "
            f"{DATA_ENV} or the run config's `data_root` at the folder that holds anercorp-camellab/ etc."
        )
    return root


def read_conll(path: Path, layers: dict[str, int], types: dict[str, dict[str, str]] | None = None,
               nested: bool = False) -> list[Sentence]:
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

    try:
        text = decode_utf8(path.read_bytes())
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 at byte {err.start}") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            close_sentence()
            continue
        where = f"{path}:{line_number}"
        needed = max(layers.values()) + 1
        if nested:  # nested annotation (Wojood): inner layers add columns; the ones read must be there
            if len(fields) < needed:
                raise CorpusError(f"{where}: {len(fields)} columns, but the corpus config reads tag column {needed - 1}")
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


def corpus_specs() -> dict:
    return yaml.safe_load(CORPORA_FILE.read_text(encoding="utf-8"))


def load_split(name: str, root: Path) -> list[Sentence]:
    """`anercorp:test` -> its sentences. A carved dev split takes the last fraction of its source split."""
    corpus, _, split = name.partition(":")
    specs = corpus_specs()
    if corpus not in specs:
        raise KeyError(f"unknown corpus {corpus!r} in {name!r}; known: {sorted(specs)} (from {CORPORA_FILE})")
    spec = specs[corpus]
    dev = spec.get("dev")
    splits = sorted(spec["files"]) + (["dev"] if dev else [])
    if split not in splits:
        raise KeyError(f"unknown split {split!r} of {corpus}; known: {splits}")

    def read(split_name: str) -> list[Sentence]:
        return read_conll(root / spec["dir"] / spec["files"][split_name], spec["layers"], spec.get("types"),
                          spec.get("nested", False))

    if dev and split in ("dev", dev["from"]):
        source = read(dev["from"])
        n_dev = round(len(source) * dev["last_fraction"])
        return source[len(source) - n_dev :] if split == "dev" else source[: len(source) - n_dev]
    return read(split)
