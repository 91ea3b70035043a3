"""Per-word label choice: independent argmax, or the best sequence that is valid IOB2 (Viterbi).

Argmax can emit `I-X` after `O` or after another type; Viterbi over the word log-probabilities,
with those transitions forbidden, picks the most probable well-formed sequence instead.
"""
from __future__ import annotations

import numpy as np

from models.labels import split_tag

DECODERS = ("argmax", "viterbi")


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


def viterbi(log_probs: np.ndarray, allowed: np.ndarray, allowed_first: np.ndarray) -> list[int]:
    """The most probable label sequence (word x label log-probabilities) that uses only allowed transitions."""
    words, n_labels = log_probs.shape
    if words == 0:
        return []
    forbidden = np.where(allowed, 0.0, -np.inf)
    score = np.where(allowed_first, log_probs[0], -np.inf)
    back = np.zeros((words, n_labels), dtype=np.int64)
    for word in range(1, words):
        candidates = score[:, None] + forbidden  # previous x next
        back[word] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[word]
    path = [int(score.argmax())]
    for word in range(words - 1, 0, -1):
        path.append(int(back[word, path[-1]]))
    return path[::-1]
