"""Words -> encoder inputs: per-word normalisation, subword pieces and overlapping windows.

Shared by training (train/features.py) and inference (Tagger) so both see the same inputs.
Every word gets exactly one prediction position: the first piece of the word in the window
where it has the most context (the logits there are the first piece's, or the mean of all
the word's pieces: a checkpoint's word_pooling). A word that yields no piece (a lone
diacritic) is encoded as the unknown piece, so the number of predictions always equals the
number of words.

A checkpoint with `context` > 0 also reads each window next to its neighbours: up to that many pieces
of the words before and after it (the sentence's own, then the neighbouring sentences' of the same
document), inside max_length. Those words are read, never predicted, so a sentence's tags come from
one window still; the split of a text into sentences (often wrong in news) matters less.
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
    # every word the window reads of its own sentence, owned or not: words first_word .. first_word + n - 1, the
    # pieces of word w at positions [word_bounds[w - first_word], word_bounds[w - first_word + 1]); what pair
    # spans are read from (models/arguments.py)
    first_word: int = 0
    word_bounds: tuple[int, ...] = ()


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
        while (
            next_start - 1 > start
            and shared + piece_counts[next_start - 1] <= overlap
            and shared + piece_counts[next_start - 1] + piece_counts[end] <= budget
        ):
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
    """Turns sentences (lists of words) into windows of encoder input ids, with the settings of a TaggerSettings
    (models/settings.py, which checks them)."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerFast, normalisation: str, max_length: int, overlap: int, context: int = 0
    ):
        if not tokenizer.is_fast:
            raise TypeError("a fast tokenizer is required (word ids come from it)")
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        if max_length - specials < 8:
            raise ValueError(f"max_length {max_length} leaves fewer than 8 pieces per window")
        self.tokenizer = tokenizer
        self.normalisation = normalisation
        self.budget = max_length - specials
        self.overlap = min(overlap, self.budget // 2)
        self.context = context
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

    def encode(self, sentences: list[list[str]], documents: list | None = None) -> list[list[Window]]:
        """The windows of each sentence; together they predict every word exactly once.

        documents: one id per sentence; neighbouring sentences with the same id are one text and lend each
        other context (when self.context > 0); an id of None, or documents None: the sentence stands alone."""
        if documents is not None and len(documents) != len(sentences):
            raise ValueError(f"{len(documents)} document ids for {len(sentences)} sentences")
        pieces = self.pieces(sentences)
        encoded = []
        for index, per_word in enumerate(pieces):
            counts = [len(ids) for ids in per_word]
            ranges = plan_windows(counts, self.budget, self.overlap) if counts else []
            owners = owner_windows(counts, ranges)
            windows = []
            for window_index, (start, end) in enumerate(ranges):
                before, after = self._context(pieces, documents, index, start, end, sum(counts[start:end]))
                input_ids, words, positions, bounds = list(self.prefix), [], [], []
                word_starts = list(range(len(input_ids)))
                for word_pieces in before:
                    word_starts.extend([len(input_ids)] * len(word_pieces))
                    input_ids.extend(word_pieces)
                for word in range(start, end):
                    if owners[word] == window_index:
                        words.append(word)
                        positions.append(len(input_ids))
                    bounds.append(len(input_ids))
                    word_starts.extend([len(input_ids)] * len(per_word[word]))
                    input_ids.extend(per_word[word])
                bounds.append(len(input_ids))
                for word_pieces in after:
                    word_starts.extend([len(input_ids)] * len(word_pieces))
                    input_ids.extend(word_pieces)
                word_starts.extend(range(len(input_ids), len(input_ids) + len(self.suffix)))
                input_ids.extend(self.suffix)
                windows.append(Window(input_ids, words, positions, word_starts, start, tuple(bounds)))
            encoded.append(windows)
        return encoded

    def _context(
        self, pieces: list[list[list[int]]], documents: list | None, sentence: int, start: int, end: int, used: int
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Whole words read around the window [start, end) of `sentence`: up to self.context pieces a side, each
        side at most half the room the window leaves, from the same sentence first, then its neighbours."""
        if not self.context or used >= self.budget:
            return [], []
        alone = documents is None or documents[sentence] is None
        cap = min(self.context, (self.budget - used) // 2)

        def gather(step: int) -> list[list[int]]:
            taken, total = [], 0
            current, word = sentence, start - 1 if step < 0 else end
            while True:
                while not 0 <= word < len(pieces[current]):  # off this sentence's edge: its neighbour's
                    current += step
                    if alone or not 0 <= current < len(pieces) or documents[current] != documents[sentence]:
                        return taken
                    word = len(pieces[current]) - 1 if step < 0 else 0
                word_pieces = pieces[current][word]
                if total + len(word_pieces) > cap:
                    return taken
                taken.append(word_pieces)
                total += len(word_pieces)
                word += step

        return gather(-1)[::-1], gather(1)


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
