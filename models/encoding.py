"""Words -> encoder inputs: per-word normalisation, subword pieces and overlapping windows.

Shared by training (train/features.py) and inference (Tagger) so both see the same inputs.
Every word gets exactly one prediction position: the first piece of the word in the window
where it has the most context (the logits there are the first piece's, or the mean of all
the word's pieces: a checkpoint's word_pooling). A word that yields no piece (a lone
diacritic) is encoded as the unknown piece, so the number of predictions always equals the
number of words.
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerFast

from models.text import normalise_word


@dataclass(frozen=True)
class Window:
    input_ids: list[int]
    words: list[int]  # indices of the words this window predicts ...
    positions: list[int]  # ... and the position of each one's first piece in input_ids
    # for every position in input_ids, the position of the first piece of its word (a special piece: its own);
    # what averages a word's pieces (models/modeling.py pool_word_pieces)
    word_starts: list[int]


def plan_windows(piece_counts: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Word ranges [start, end) of at most `budget` pieces, consecutive ranges sharing about `overlap` pieces."""
    n = len(piece_counts)
    ranges: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and (end == start or used + piece_counts[end] <= budget):
            used += piece_counts[end]
            end += 1
        ranges.append((start, end))
        if end >= n:
            return ranges
        # step back from `end` while the shared part stays within `overlap`, but always move forward, and
        # leave room for the word at `end` so the next range gets past it (else, before a long word, ranges
        # ending at the same word would repeat, each predicting nothing new)
        next_start, shared = end, 0
        while (next_start - 1 > start and shared + piece_counts[next_start - 1] <= overlap
               and shared + piece_counts[next_start - 1] + piece_counts[end] <= budget):
            next_start -= 1
            shared += piece_counts[next_start]
        start = next_start


def owner_windows(piece_counts: list[int], ranges: list[tuple[int, int]]) -> list[int]:
    """For each word, the index of the range where the word has the most context on its poorer side."""
    prefix = [0]
    for count in piece_counts:
        prefix.append(prefix[-1] + count)
    best: list[tuple[int, int]] = [(-1, -1)] * len(piece_counts)  # (context, window)
    for window, (start, end) in enumerate(ranges):
        for word in range(start, end):
            context = min(prefix[word] - prefix[start], prefix[end] - prefix[word + 1])
            if context > best[word][0]:
                best[word] = (context, window)
    return [window for _, window in best]


class WordEncoder:
    """Turns sentences (lists of words) into windows of encoder input ids."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, normalisation: str, max_length: int, overlap: int):
        if not tokenizer.is_fast:
            raise TypeError("a fast tokenizer is required (word ids come from it)")
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        if max_length - specials < 8:
            raise ValueError(f"max_length {max_length} leaves fewer than 8 pieces per window")
        self.tokenizer = tokenizer
        self.normalisation = normalisation
        self.budget = max_length - specials
        self.overlap = min(overlap, self.budget // 2)
        # the special pieces around one window, read off a probe (tokenizers differ: [CLS] x [SEP], <s> x </s>, ...)
        probe = tokenizer(["a"], is_split_into_words=True)
        content = [index for index, word in enumerate(probe.word_ids()) if word is not None]
        self.prefix = probe["input_ids"][: content[0]]
        self.suffix = probe["input_ids"][content[-1] + 1 :]

    def pieces(self, sentences: list[list[str]]) -> list[list[list[int]]]:
        """Piece ids of every word, after normalisation; never empty, capped at one window."""
        normalised = [[normalise_word(word, self.normalisation) for word in words] for words in sentences]
        batch = self.tokenizer(normalised, is_split_into_words=True, add_special_tokens=False, verbose=False)
        unknown = self.tokenizer.unk_token_id
        result = []
        for index, words in enumerate(normalised):
            per_word: list[list[int]] = [[] for _ in words]
            for piece, word in zip(batch["input_ids"][index], batch.word_ids(index)):
                per_word[word].append(piece)
            result.append([ids[: self.budget] if ids else [unknown] for ids in per_word])
        return result

    def encode(self, sentences: list[list[str]]) -> list[list[Window]]:
        """The windows of each sentence; together they predict every word exactly once."""
        encoded = []
        for per_word in self.pieces(sentences):
            counts = [len(ids) for ids in per_word]
            ranges = plan_windows(counts, self.budget, self.overlap) if counts else []
            owners = owner_windows(counts, ranges)
            windows = []
            for window_index, (start, end) in enumerate(ranges):
                input_ids, words, positions = list(self.prefix), [], []
                word_starts = list(range(len(input_ids)))
                for word in range(start, end):
                    if owners[word] == window_index:
                        words.append(word)
                        positions.append(len(input_ids))
                    word_starts.extend([len(input_ids)] * len(per_word[word]))
                    input_ids.extend(per_word[word])
                word_starts.extend(range(len(input_ids), len(input_ids) + len(self.suffix)))
                input_ids.extend(self.suffix)
                windows.append(Window(input_ids, words, positions, word_starts))
            encoded.append(windows)
        return encoded


def length_batches(lengths: list[int], batch_size: int, min_fill: float = 0.7) -> list[list[int]]:
    """Indices into `lengths`, longest first, cut into batches of at most batch_size that pad little: a batch
    also ends before an item shorter than min_fill of its longest. Without that, a short document's one long
    window would pad a whole batch of short ones to its length (the 1,000-word article ran at half speed)."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    batches: list[list[int]] = []
    for index in order:
        if not batches or len(batches[-1]) == batch_size or lengths[index] < min_fill * lengths[batches[-1][0]]:
            batches.append([])
        batches[-1].append(index)
    return batches
