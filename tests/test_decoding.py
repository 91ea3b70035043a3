"""Viterbi decoding: the best well-formed IOB2 sequence, and the batched form equal to one sentence at a time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.decoding import allowed_transitions, viterbi_batch
from models.labels import bio_labels

LABELS = bio_labels(["PERS", "LOC"])


def _random_log_probs(rng: np.random.Generator, words: int, labels: int) -> np.ndarray:
    return np.log(rng.dirichlet(np.full(labels, 0.3), size=words)).astype(np.float32)


def _best_by_brute_force(log_probs: np.ndarray, allowed: np.ndarray, allowed_first: np.ndarray) -> list[int]:
    best, best_score = [], -np.inf
    for path in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs)):
        if not allowed_first[path[0]] or not all(allowed[a, b] for a, b in zip(path, path[1:])):
            continue
        score = sum(float(log_probs[word, label]) for word, label in enumerate(path))
        if score > best_score:
            best, best_score = list(path), score
    return best


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_finds_the_best_valid_sequence(seed):
    rng = np.random.default_rng(seed)
    allowed, allowed_first = allowed_transitions(LABELS)
    log_probs = _random_log_probs(rng, 4, len(LABELS))
    best = _best_by_brute_force(log_probs, allowed, allowed_first)
    assert viterbi_batch([log_probs], allowed, allowed_first)[0] == best


def test_viterbi_repairs_what_argmax_leaves_invalid():
    allowed, allowed_first = allowed_transitions(LABELS)
    # argmax says O I-PERS; the best valid sequence is O B-PERS or O O, whichever scores more
    log_probs = np.log(np.array([[0.9, 0.02, 0.02, 0.03, 0.03], [0.3, 0.25, 0.4, 0.03, 0.02]], dtype=np.float32))
    assert viterbi_batch([log_probs], allowed, allowed_first)[0] == [0, 0]


@pytest.mark.parametrize("labels", [LABELS, bio_labels([f"T{i}" for i in range(33)]), ["O"]])
def test_batched_equals_one_sentence_at_a_time(labels):
    rng = np.random.default_rng(7)
    allowed, allowed_first = allowed_transitions(labels)
    # lengths from 0 up, more sentences than one group, and ties (all-equal rows)
    sentences = [_random_log_probs(rng, int(n), len(labels)) for n in rng.integers(0, 60, 300)]
    sentences += [np.zeros((3, len(labels)), dtype=np.float32), np.zeros((0, len(labels)), dtype=np.float32)]
    one_by_one = [viterbi_batch([log_probs], allowed, allowed_first)[0] for log_probs in sentences]
    assert viterbi_batch(sentences, allowed, allowed_first, group=64) == one_by_one
    assert [len(path) for path in one_by_one] == [len(log_probs) for log_probs in sentences]
    assert viterbi_batch([], allowed, allowed_first) == []


def test_batched_handles_any_transition_matrix():
    rng = np.random.default_rng(3)
    allowed = rng.random((6, 6)) < 0.5
    allowed_first = np.ones(6, dtype=bool)
    sentences = [_random_log_probs(rng, 4, 6) for _ in range(20)]
    for log_probs, path in zip(sentences, viterbi_batch(sentences, allowed, allowed_first)):
        assert path == _best_by_brute_force(log_probs, allowed, allowed_first)
