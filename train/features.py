"""Features: Sentences -> windows of piece ids with first-piece labels per layer, and the batch collator."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from corpora.reader import Sentence
from models.arguments import ARGUMENT_KEY, ENTITY_LAYER, NO_ROLE, PAIR_COLUMNS, TRIGGER_LAYER, candidate_pairs
from models.encoding import Window, WordEncoder
from models.labels import chunks, types_of
from models.modeling import IGNORE, PAIRS_KEY, label_key
from train.config import ConfigError

log = logging.getLogger(__name__)

# Travels with each window through the Trainer (as a label) so evaluation can put windows back into
# sentences whatever order the sampler and the processes used.
WINDOW_INDEX = "window_index"
WORD_STARTS = "word_starts"  # the model's forward argument


@dataclass(frozen=True)
class WindowOrigin:
    sentence: int
    words: list[int]  # the words this window predicts ...
    positions: list[int]  # ... at these positions


@dataclass
class PairStats:
    """Gold-span pairs of the sentences that annotate arguments: how many, and how many no single window reads
    whole (long sentences only; those are scored at inference, but not trained on)."""

    pairs: int = 0
    arguments: int = 0
    unread: int = 0
    unread_arguments: int = 0


def window_reads(window: Window, *spans: tuple) -> bool:
    """Whether every (first word, end word, ...) span lies whole inside the words the window reads."""
    last = window.first_word + len(window.word_bounds) - 1
    return all(window.first_word <= span[0] and span[1] <= last for span in spans)


def window_pairs(
    sentence: Sentence, windows: list[Window], layers: dict[str, list[str]], roles: list[str], stats: PairStats
) -> list[tuple[list[list[int]], list[int]]]:
    """Per window, the rows (models/arguments.py PAIR_COLUMNS) and role ids (0: none) of the sentence's gold
    (trigger, entity) pairs. Each pair goes to one window that reads both spans whole: the one that predicts
    the trigger's first word where it can, so no pair is trained twice."""
    per_window: list[tuple[list[list[int]], list[int]]] = [([], []) for _ in windows]
    if sentence.arguments is None:
        return per_window
    role_ids = {role: index for index, role in enumerate([NO_ROLE, *roles])}
    gold = {(argument.trigger, argument.entity): argument.role for argument in sentence.arguments}
    pairs = candidate_pairs(
        chunks(list(sentence.tags[TRIGGER_LAYER])),
        chunks(list(sentence.tags[ENTITY_LAYER])),
        types_of(layers[TRIGGER_LAYER]),
        types_of(layers[ENTITY_LAYER]),
    )
    for trigger, entity, features in pairs:
        role = gold.get((trigger[:2], entity[:2]), NO_ROLE)
        stats.pairs += 1
        stats.arguments += role != NO_ROLE
        readers = [index for index, window in enumerate(windows) if window_reads(window, trigger, entity)]
        if not readers:
            stats.unread += 1
            stats.unread_arguments += role != NO_ROLE
            continue
        chosen = next((index for index in readers if trigger[0] in windows[index].words), readers[0])
        window = windows[chosen]
        bounds = [window.word_bounds[word - window.first_word] for span in (trigger, entity) for word in span[:2]]
        per_window[chosen][0].append([*bounds, *features])
        per_window[chosen][1].append(role_ids[role])
    return per_window


def build_features(
    sentences: list[Sentence],
    encoder: WordEncoder,
    layers: dict[str, list[str]],
    source: str = "data",
    word_pooling: str = "first",
    roles: list[str] | None = None,
) -> tuple[list[dict], list[WindowOrigin]]:
    """One feature per window. A word is labelled (at its first piece) only in the window that predicts it;
    other pieces, specials and layers the sentence does not annotate are IGNORE (masked, not `O`).
    word_pooling "mean" adds each piece's word start, so the model scores each word by the mean of its pieces.
    roles: with an argument head, each window also carries its gold-span pairs and their roles; a sentence
    whose corpus does not annotate arguments carries none (its argument loss is masked)."""
    label_ids = {layer: {label: index for index, label in enumerate(labels)} for layer, labels in layers.items()}
    unknown = {layer: set() for layer in layers}
    for sentence in sentences:
        for layer, tags in sentence.tags.items():
            if layer in label_ids:
                unknown[layer].update(set(tags) - label_ids[layer].keys())
    if roles:
        unknown_roles = {argument.role for sentence in sentences for argument in sentence.arguments or ()} - set(roles)
        if unknown_roles:
            raise ConfigError(f"{source}: roles {sorted(unknown_roles)} are not in the config's roles {roles}")
    for layer, labels in unknown.items():
        if labels:
            raise ConfigError(
                f"{source}: labels {sorted(labels)} of layer {layer!r} are not in the config's label "
                f"set {layers[layer]}; add their types to the config or map them in configs/corpora.yaml"
            )
    features, origins = [], []
    windows = encoder.encode(
        [list(sentence.words) for sentence in sentences], [sentence.document for sentence in sentences]
    )
    stats = PairStats()
    for index, (sentence, sentence_windows) in enumerate(zip(sentences, windows)):
        pairs = window_pairs(sentence, sentence_windows, layers, roles, stats) if roles else None
        for window_index, window in enumerate(sentence_windows):
            feature = {"input_ids": window.input_ids, WINDOW_INDEX: len(features)}
            if pairs is not None:
                feature[PAIRS_KEY], feature[label_key(ARGUMENT_KEY)] = pairs[window_index]
            if word_pooling == "mean":
                feature[WORD_STARTS] = window.word_starts
            for layer in layers:
                labels = [IGNORE] * len(window.input_ids)
                tags = sentence.tags.get(layer)
                if tags is not None:
                    for word, position in zip(window.words, window.positions):
                        labels[position] = label_ids[layer][tags[word]]
                feature[label_key(layer)] = labels
            features.append(feature)
            origins.append(WindowOrigin(index, window.words, window.positions))
    if stats.unread:
        log.info(
            "%s: %d of %d gold-span pairs (%d of %d arguments) lie in no single window and are not trained on",
            source,
            stats.unread,
            stats.pairs,
            stats.unread_arguments,
            stats.arguments,
        )
    return features, origins


class Collator:
    """Dynamic padding: pads each batch to its own longest window."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(feature["input_ids"]) for feature in features)
        batch = {WINDOW_INDEX: torch.tensor([f[WINDOW_INDEX] for f in features], dtype=torch.long)}
        for key in features[0]:
            if key == WINDOW_INDEX:
                continue
            if key in (PAIRS_KEY, label_key(ARGUMENT_KEY)):  # padded to the batch's most pairs (at least one)
                most = max(1, *(len(f[key]) for f in features))
                fill = [0] * len(PAIR_COLUMNS) if key == PAIRS_KEY else IGNORE
                rows = [f[key] + [fill] * (most - len(f[key])) for f in features]
            elif key == WORD_STARTS:  # padding maps to itself: a word of its own, never read
                rows = [f[key] + list(range(len(f[key]), length)) for f in features]
            else:
                fill = self.pad_id if key == "input_ids" else IGNORE
                rows = [f[key] + [fill] * (length - len(f[key])) for f in features]
            batch[key] = torch.tensor(rows, dtype=torch.long)
        batch["attention_mask"] = torch.tensor(
            [[1] * len(f["input_ids"]) + [0] * (length - len(f["input_ids"])) for f in features], dtype=torch.long
        )
        return batch
