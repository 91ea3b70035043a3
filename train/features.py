"""Features: Sentences -> windows of piece ids with first-piece labels per layer, and the batch collator."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from models.encoding import WordEncoder
from models.modeling import IGNORE, WORD_POOLINGS, label_key
from train.corpora import Sentence


# Travels with each window through the Trainer (as a label) so evaluation can put windows back into
# sentences whatever order the sampler and the processes used.
WINDOW_INDEX = "window_index"
WORD_STARTS = "word_starts"  # the model's forward argument


@dataclass(frozen=True)
class WindowOrigin:
    sentence: int
    words: list[int]  # the words this window predicts ...
    positions: list[int]  # ... at these positions


def build_features(sentences: list[Sentence], encoder: WordEncoder, layers: dict[str, list[str]],
                   source: str = "data", word_pooling: str = "first") -> tuple[list[dict], list[WindowOrigin]]:
    """One feature per window. A word is labelled (at its first piece) only in the window that predicts it;
    other pieces, specials and layers the sentence does not annotate are IGNORE (masked, not `O`).
    word_pooling "mean" adds each piece's word start, so the model scores each word by the mean of its pieces."""
    if word_pooling not in WORD_POOLINGS:
        raise ValueError(f"word_pooling must be one of {WORD_POOLINGS}, got {word_pooling!r}")
    label_ids = {layer: {label: index for index, label in enumerate(labels)} for layer, labels in layers.items()}
    unknown = {layer: set() for layer in layers}
    for sentence in sentences:
        for layer, tags in sentence.tags.items():
            if layer in label_ids:
                unknown[layer].update(set(tags) - label_ids[layer].keys())
    for layer, labels in unknown.items():
        if labels:
            raise ValueError(f"{source}: labels {sorted(labels)} of layer {layer!r} are not in the config's label set "
                             f"{layers[layer]}; add their types to the config or map them in configs/corpora.yaml")
    features, origins = [], []
    windows = encoder.encode([list(sentence.words) for sentence in sentences], [sentence.document for sentence in sentences])
    for index, (sentence, sentence_windows) in enumerate(zip(sentences, windows)):
        for window in sentence_windows:
            feature = {"input_ids": window.input_ids, WINDOW_INDEX: len(features)}
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
            if key == WORD_STARTS:  # padding maps to itself: a word of its own, never read
                rows = [f[key] + list(range(len(f[key]), length)) for f in features]
            else:
                fill = self.pad_id if key == "input_ids" else IGNORE
                rows = [f[key] + [fill] * (length - len(f[key])) for f in features]
            batch[key] = torch.tensor(rows, dtype=torch.long)
        batch["attention_mask"] = torch.tensor(
            [[1] * len(f["input_ids"]) + [0] * (length - len(f["input_ids"])) for f in features], dtype=torch.long)
        return batch
