"""Per-word label choice: independent argmax, or the best sequence that is valid IOB2 (Viterbi).

Argmax can emit `I-X` after `O` or after another type; Viterbi over the word log-probabilities,
with those transitions forbidden, picks the most probable well-formed sequence instead.
"""

from __future__ import annotations

import numpy as np

from models.encoding import length_batches
from models.labels import split_tag


def allowed_transitions(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(allowed[previous, next], allowed_first[next]): `I-X` only continues `B-X` or `I-X`."""
    parsed = [split_tag(label) for label in labels]
    allowed = np.ones((len(labels), len(labels)), dtype=bool)
    allowed_first = np.ones(len(labels), dtype=bool)
    for nxt, (prefix, kind) in enumerate(parsed):
        if prefix == "I":
            allowed_first[nxt] = False
            for prev, (_, prev_kind) in enumerate(parsed):
                allowed[prev, nxt] = prev_kind == kind
    return allowed, allowed_first


def viterbi_batch(
    sentences: list[np.ndarray], allowed: np.ndarray, allowed_first: np.ndarray, group: int = 256
) -> list[list[int]]:
    """The most probable label sequence of each sentence (word x label log-probabilities) that uses only allowed
    transitions: one numpy step per word position for a group of sentences, rather than one per word (the Python
    loop was the Tagger's main cost after the encoder)."""
    paths: list[list[int]] = [[] for _ in sentences]
    # longest first, in groups, so padding to each group's longest sentence stays small
    for members in length_batches([len(sentence) for sentence in sentences], group, min_fill=0):
        group_paths = _viterbi_sorted([sentences[index] for index in members], allowed, allowed_first)
        for index, path in zip(members, group_paths):
            paths[index] = path
    return paths


def _viterbi_sorted(sentences: list[np.ndarray], allowed: np.ndarray, allowed_first: np.ndarray) -> list[list[int]]:
    """Viterbi over sentences sorted longest first: the rows still going at a position are a prefix.

    A label that may follow any label takes the best previous score outright; the others (I-X: only after
    B-X or I-X) pick among their few allowed predecessors, so a step costs labels, not labels squared."""
    lengths = np.array([len(log_probs) for log_probs in sentences])
    longest = int(lengths[0]) if len(lengths) else 0
    if longest == 0:
        return [[] for _ in sentences]
    n_labels = allowed.shape[0]
    padded = np.zeros((len(sentences), longest, n_labels), dtype=np.float32)
    for row, log_probs in enumerate(sentences):
        padded[row, : len(log_probs)] = log_probs
    free = allowed.all(0)
    restricted = np.flatnonzero(~free)
    predecessors = [np.flatnonzero(allowed[:, label]) for label in restricted]
    # allowed predecessors of each restricted label, padded with n_labels: a column of -inf appended to the scores
    choices = np.full((len(restricted), max([len(p) for p in predecessors], default=0) or 1), n_labels)
    for row, labels in enumerate(predecessors):
        choices[row, : len(labels)] = labels
    going = int((lengths > 0).sum())
    # float64 from here on, as adding the 0/-inf transition matrix did: identical sums, identical ties
    score = np.where(allowed_first, padded[:going, 0], -np.inf).astype(np.float64)
    final = np.empty((len(sentences), n_labels))  # each row's score at its own last word
    back = np.zeros((len(sentences), longest, n_labels), dtype=np.int32)
    for word in range(1, longest):
        still = int((lengths > word).sum())
        final[still:going] = score[still:going]
        going, score = still, score[:still]
        best = np.empty_like(score)
        best[:, free] = score.max(1, keepdims=True)
        back[:going, word, free] = score.argmax(1)[:, None]
        if len(restricted):
            extended = np.concatenate([score, np.full((going, 1), -np.inf)], 1)
            gathered = extended[:, choices]  # row x restricted label x its predecessors
            picked = gathered.argmax(2)
            best[:, restricted] = np.take_along_axis(gathered, picked[..., None], 2)[..., 0]
            previous = choices[np.arange(len(restricted)), picked]
            # no allowed predecessor: 0, as the argmax over all -inf did
            back[:going, word, restricted] = np.where(previous == n_labels, 0, previous)
        score = best + padded[:going, word]
    final[:going] = score
    best_last = final.argmax(1)
    path = np.zeros((len(sentences), longest), dtype=np.int64)
    for word in range(longest - 1, -1, -1):
        ending = lengths - 1 == word
        path[ending, word] = best_last[ending]
        if word > 0:
            rows = int((lengths > word).sum())
            path[:rows, word - 1] = back[np.arange(rows), word, path[:rows, word]]
    return [path[row, :length].tolist() for row, length in enumerate(lengths)]
