"""Words -> windows of encoder input ids: every word gets exactly one prediction position."""

from __future__ import annotations

import random

import pytest
from conftest import tiny_tokenizer

from models.encoding import WordEncoder, owner_windows, plan_windows
from models.text import normalise_word

VOCAB_WORDS = ["قال", "محمد", "أحمد", "في", "دمشق", "الرئيس", "السوري", "،", ".", "(", ")", "اليوم", "a", "b"]
# Words made of known characters but not in the vocabulary as a whole: several pieces each
NEW_WORDS = ["سوريا", "محمود", "الأمم", "الدول", "مسرح", "ab", "baab"]


# --- plan_windows ----------------------------------------------------------------------------------


def test_plan_windows_by_hand():
    # ten one-piece words, 4 per window, 2 shared: each window starts 2 words after the previous one
    assert plan_windows([1] * 10, budget=4, overlap=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]


def test_plan_windows_one_window_when_it_fits():
    assert plan_windows([3, 1, 2], budget=6, overlap=2) == [(0, 3)]
    assert plan_windows([5], budget=4, overlap=2) == [(0, 1)]


def test_plan_windows_over_long_word_gets_a_window_of_its_own():
    # 2 | 10 (more than the budget) | 2 2
    assert plan_windows([2, 10, 2, 2], budget=5, overlap=2) == [(0, 1), (1, 2), (2, 4)]


def test_plan_windows_no_repeated_ranges_before_a_long_word():
    # 20 one-piece words, a word of a whole window (30 pieces), 20 more: the long word cannot share a
    # window, so there is no overlap around it, and no range ending at word 20 is repeated
    assert plan_windows([1] * 20 + [30] + [1] * 20, budget=30, overlap=8) == [(0, 20), (20, 21), (21, 41)]
    # a 25-piece word leaves room for 5 shared pieces: words 5..9
    assert plan_windows([1] * 10 + [25] + [1] * 5, budget=30, overlap=8) == [(0, 10), (5, 11), (11, 16)]


def _check_plan(counts: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    ranges = plan_windows(counts, budget, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(counts), "ranges do not cover all words"
    for start, end in ranges:
        assert start < end
        assert sum(counts[start:end]) <= budget or end - start == 1, (start, end)
    for (start, end), (next_start, next_end) in zip(ranges, ranges[1:]):
        assert start < next_start <= end, "a gap, or no progress"
        assert end < next_end, "no progress"
        assert sum(counts[next_start:end]) <= overlap
    return ranges


@pytest.mark.parametrize("seed", range(20))
def test_plan_windows_properties(seed):
    rng = random.Random(seed)
    budget = rng.randint(8, 40)
    overlap = rng.randint(1, budget // 2)
    counts = [rng.choice([1, 1, 1, 2, 3, budget, budget + 5]) for _ in range(rng.randint(1, 200))]
    _check_plan(counts, budget, overlap)


@pytest.mark.parametrize("seed", range(20))
def test_consecutive_windows_overlap_when_words_are_short(seed):
    rng = random.Random(seed)
    budget = rng.randint(8, 40)
    overlap = rng.randint(2, budget // 2)
    counts = [rng.randint(1, overlap) for _ in range(rng.randint(1, 200))]
    ranges = _check_plan(counts, budget, overlap)
    for (_, end), (next_start, _) in zip(ranges, ranges[1:]):
        assert next_start < end, "consecutive windows share no word"


# --- owner_windows ---------------------------------------------------------------------------------


def test_owner_windows_by_hand():
    # windows (0,4) (2,6) (4,8) (6,10) of one-piece words: a shared word goes where it is further from the edge
    ranges = [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert owner_windows([1] * 10, ranges) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]


def test_owner_windows_ties_go_to_the_first_window():
    # word 1 has context min(1, 0) = 0 in window 0 and min(0, 1) = 0 in window 1
    assert owner_windows([1, 1, 1], [(0, 2), (1, 3)]) == [0, 0, 1]


@pytest.mark.parametrize("seed", range(20))
def test_each_word_owned_by_a_window_with_the_most_context(seed):
    rng = random.Random(seed)
    budget = rng.randint(8, 40)
    overlap = rng.randint(1, budget // 2)
    counts = [rng.choice([1, 1, 2, 3, 5]) for _ in range(rng.randint(1, 200))]
    ranges = plan_windows(counts, budget, overlap)
    owners = owner_windows(counts, ranges)
    assert len(owners) == len(counts)
    for word, owner in enumerate(owners):
        start, end = ranges[owner]
        assert start <= word < end, "the owner does not contain the word"
        contexts = [min(sum(counts[s:word]), sum(counts[word + 1 : e])) for s, e in ranges if s <= word < e]
        assert min(sum(counts[start:word]), sum(counts[word + 1 : end])) == max(contexts)


# --- WordEncoder -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer(VOCAB_WORDS)


@pytest.fixture(scope="module")
def encoder(tokenizer):
    return WordEncoder(tokenizer, "basic", max_length=32, overlap=8)


def _pieces_alone(tokenizer, word: str) -> list[int]:
    normalised = normalise_word(word, "basic")
    return tokenizer([normalised], is_split_into_words=True, add_special_tokens=False)["input_ids"]


def _check_sentence(tokenizer, windows, words: list[str], max_length: int = 32) -> None:
    """Every word predicted exactly once, at the position of its first piece, in windows within max_length."""
    predicted = [word for window in windows for word in window.words]
    assert sorted(predicted) == list(range(len(words))), "a word without a prediction, or with two"
    for window in windows:
        assert len(window.input_ids) <= max_length
        assert window.input_ids[0] == tokenizer.cls_token_id
        assert window.input_ids[-1] == tokenizer.sep_token_id
        assert len(window.words) == len(window.positions)
        assert window.positions == sorted(window.positions)
        for word, position in zip(window.words, window.positions):
            alone = _pieces_alone(tokenizer, words[word]) or [tokenizer.unk_token_id]
            assert window.input_ids[position] == alone[0], (words[word], position)
            # the word's pieces follow its first piece, capped at one window
            assert window.input_ids[position : position + len(alone)][:30] == alone[:30]


def test_tokenizer_sanity(tokenizer):
    # the premises the tests below rely on
    assert len(_pieces_alone(tokenizer, "محمد")) == 1
    assert len(_pieces_alone(tokenizer, "سوريا")) > 1
    assert tokenizer.num_special_tokens_to_add(pair=False) == 2


def test_encoder_reads_the_specials_and_budget(encoder, tokenizer):
    assert encoder.prefix == [tokenizer.cls_token_id]
    assert encoder.suffix == [tokenizer.sep_token_id]
    assert encoder.budget == 30
    assert encoder.overlap == 8
    assert WordEncoder(tokenizer, "basic", max_length=32, overlap=100).overlap == 15  # at most half a window


def test_encoder_rejects_a_max_length_without_room(tokenizer):
    with pytest.raises(ValueError, match="max_length"):
        WordEncoder(tokenizer, "basic", max_length=9, overlap=2)


def test_every_word_gets_exactly_one_prediction_in_a_long_sentence(encoder, tokenizer):
    rng = random.Random(7)
    words = [rng.choice(VOCAB_WORDS + NEW_WORDS) for _ in range(530)]
    [windows] = encoder.encode([words])
    assert len(windows) >= 18, "530 words of at least one piece need at least 18 windows of 30 pieces"
    _check_sentence(tokenizer, windows, words)


def test_short_sentence_is_one_window_with_all_pieces(encoder, tokenizer):
    words = ["قال", "محمد", "في", "سوريا"]
    [windows] = encoder.encode([words])
    assert len(windows) == 1
    expected = [tokenizer.cls_token_id]
    positions = []
    for word in words:
        positions.append(len(expected))
        expected += _pieces_alone(tokenizer, word)
    expected.append(tokenizer.sep_token_id)
    assert windows[0].input_ids == expected
    assert windows[0].words == [0, 1, 2, 3]
    assert windows[0].positions == positions == [1, 2, 3, 4]


@pytest.mark.parametrize("empty_word", ["", " ", "\t"])
def test_a_word_without_pieces_gets_the_unknown_piece(encoder, tokenizer, empty_word):
    assert _pieces_alone(tokenizer, empty_word) == []  # premise: the tokenizer gives it nothing
    words = ["قال", empty_word, "محمد"]
    [[window]] = encoder.encode([words])
    unk = tokenizer.unk_token_id
    assert window.input_ids == [
        tokenizer.cls_token_id,
        _pieces_alone(tokenizer, "قال")[0],
        unk,
        _pieces_alone(tokenizer, "محمد")[0],
        tokenizer.sep_token_id,
    ]
    assert window.words == [0, 1, 2]
    assert window.input_ids[window.positions[1]] == unk


@pytest.mark.parametrize("odd_word", ["\u0651", "\u0640", "\u064e\u0651", "\x00", "\u200b"])
def test_lone_marks_and_controls_are_one_unknown_piece(encoder, tokenizer, odd_word):
    words = ["في", odd_word, "دمشق"]
    [windows] = encoder.encode([words])
    _check_sentence(tokenizer, windows, words)
    [window] = windows
    assert len(window.input_ids) == 5
    assert window.input_ids[window.positions[1]] == tokenizer.unk_token_id


@pytest.mark.parametrize("long_word", ["م." * 500, "م" * 1000])
def test_a_1000_character_word_is_capped_and_still_predicted_once(encoder, tokenizer, long_word):
    assert len(long_word) == 1000
    words = ["قال"] * 20 + [long_word] + ["محمد"] * 20
    [windows] = encoder.encode([words])
    _check_sentence(tokenizer, windows, words)
    [owner] = [window for window in windows if 20 in window.words]
    assert owner.input_ids[owner.positions[owner.words.index(20)]] == _pieces_alone(tokenizer, long_word)[0]


def test_a_word_longer_than_a_window_fills_exactly_one_window(encoder, tokenizer):
    long_word = "م." * 500  # 1,000 pieces, capped at the 30-piece budget
    assert len(_pieces_alone(tokenizer, long_word)) == 1000
    [windows] = encoder.encode([["في", long_word, "دمشق"]])
    assert [window.words for window in windows] == [[0], [1], [2]]
    assert len(windows[1].input_ids) == 32
    assert windows[1].input_ids[1:-1] == _pieces_alone(tokenizer, long_word)[:30]


def test_no_window_without_a_prediction_around_a_long_word(encoder, tokenizer):
    words = ["قال"] * 20 + ["م." * 500] + ["محمد"] * 20
    [windows] = encoder.encode([words])
    assert [(window.words[0], window.words[-1]) for window in windows] == [(0, 19), (20, 20), (21, 40)]


def test_empty_sentence_has_no_windows(encoder):
    assert encoder.encode([[]]) == [[]]
    assert encoder.encode([]) == []


def test_batch_keeps_sentence_order(encoder, tokenizer):
    rng = random.Random(3)
    sentences = [
        ["قال", "محمد"],
        [],
        [rng.choice(VOCAB_WORDS + NEW_WORDS) for _ in range(100)],
        ["\u0651"],
        ["في", "", "سوريا", "."],
        ["دمشق"],
    ]
    encoded = encoder.encode(sentences)
    assert len(encoded) == len(sentences)
    for words, windows in zip(sentences, encoded):
        _check_sentence(tokenizer, windows, words)
    assert len(encoded[2]) > 1
    # each sentence's windows are its own: encoding alone gives the same windows
    for words, windows in zip(sentences, encoded):
        assert encoder.encode([words]) == [windows]


# --- context: the neighbouring text read around a window ----------------------------------------------


def _context_of(window, own_words: list[str], tokenizer) -> tuple[list[int], list[int]]:
    """The pieces a one-window sentence's window reads before and after its own words."""
    own = [piece for word in own_words for piece in (_pieces_alone(tokenizer, word) or [tokenizer.unk_token_id])]
    first = window.positions[0]
    assert window.input_ids[first : first + len(own)] == own
    return window.input_ids[1:first], window.input_ids[first + len(own) : -1]


def _flat(tokenizer, words: list[str]) -> list[int]:
    return [piece for word in words for piece in _pieces_alone(tokenizer, word)]


def test_context_reads_the_neighbouring_sentences_of_the_same_document(tokenizer):
    encoder = WordEncoder(tokenizer, "basic", max_length=32, overlap=8, context=3)
    sentences = [["اليوم", "قال", "الرئيس", "السوري"], ["في", "دمشق"], ["محمد", "أحمد", "قال", "."]]
    [[first], [middle], [last]] = encoder.encode(sentences, ["news", "news", "news"])
    # whole words, at most 3 pieces a side, nearest first: the middle sentence reads the previous one's tail and
    # the next one's head, but predicts only its own two words
    before, after = _context_of(middle, sentences[1], tokenizer)
    assert before == _flat(tokenizer, ["قال", "الرئيس", "السوري"])
    assert after == _flat(tokenizer, ["محمد", "أحمد", "قال"])
    assert middle.words == [0, 1]
    assert _context_of(first, sentences[0], tokenizer) == ([], _flat(tokenizer, ["في", "دمشق", "محمد"]))
    assert _context_of(last, sentences[2], tokenizer) == (_flat(tokenizer, ["السوري", "في", "دمشق"]), [])
    # each context piece is a word of its own for mean pooling
    assert middle.word_starts[:4] == [0, 1, 2, 3]


def test_context_takes_whole_words_and_stops_before_one_that_does_not_fit(tokenizer):
    assert len(_pieces_alone(tokenizer, "سوريا")) > 1
    encoder = WordEncoder(tokenizer, "basic", max_length=32, overlap=8, context=2)
    [_, [window]] = encoder.encode([["قال", "سوريا"], ["في"]], [0, 0])
    assert _context_of(window, ["في"], tokenizer) == ([], [])


def test_context_never_crosses_documents_and_none_stands_alone(tokenizer):
    encoder = WordEncoder(tokenizer, "basic", max_length=32, overlap=8, context=4)
    sentences = [["قال", "محمد"], ["في", "دمشق"], ["الرئيس", "."]]
    alone = WordEncoder(tokenizer, "basic", max_length=32, overlap=8).encode(sentences)
    assert encoder.encode(sentences) == alone  # no document ids: no context
    assert encoder.encode(sentences, [1, 2, 3]) == alone
    assert encoder.encode(sentences, [None, None, None]) == alone
    [[a], [b], [c]] = encoder.encode(sentences, ["x", "x", "y"])
    assert _context_of(b, sentences[1], tokenizer) == (_flat(tokenizer, ["قال", "محمد"]), [])
    assert _context_of(c, sentences[2], tokenizer) == ([], [])
    with pytest.raises(ValueError, match="2 document ids for 3 sentences"):
        encoder.encode(sentences, ["x", "x"])


def test_context_steps_over_empty_sentences(tokenizer):
    encoder = WordEncoder(tokenizer, "basic", max_length=32, overlap=8, context=4)
    [[first], [], [last]] = encoder.encode([["قال", "محمد"], [], ["في"]], [0, 0, 0])
    assert _context_of(last, ["في"], tokenizer) == (_flat(tokenizer, ["قال", "محمد"]), [])


@pytest.mark.parametrize("seed", range(5))
def test_context_keeps_one_prediction_per_word_within_max_length(tokenizer, seed):
    rng = random.Random(seed)
    encoder = WordEncoder(tokenizer, "basic", max_length=32, overlap=8, context=6)
    sentences = [[rng.choice(VOCAB_WORDS + NEW_WORDS) for _ in range(rng.choice([0, 1, 5, 12, 60]))] for _ in range(12)]
    encoded = encoder.encode(sentences, [index // 4 for index in range(12)])
    without = WordEncoder(tokenizer, "basic", max_length=32, overlap=8).encode(sentences)
    for words, windows, plain in zip(sentences, encoded, without):
        _check_sentence(tokenizer, windows, words)
        # the same words, predicted in the same windows; only the text read around them differs
        assert [window.words for window in windows] == [window.words for window in plain]
        for window, alone in zip(windows, plain):
            assert len(window.word_starts) == len(window.input_ids)
            # each side takes at most half of the room the window leaves, and at most 6 pieces
            room = 32 - len(alone.input_ids)
            assert len(window.input_ids) - len(alone.input_ids) <= 2 * min(6, room // 2)


# --- length_batches --------------------------------------------------------------------------------


def test_length_batches_longest_first_full_and_little_padding():
    from models.encoding import length_batches

    lengths = [10, 128, 60, 55, 58, 12, 11, 57]
    batches = length_batches(lengths, batch_size=3)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    assert batches == [[1], [2, 4, 7], [3], [5, 6, 0]]  # the 128 alone: it would pad the 60s to 128
    assert all(len(batch) <= 3 for batch in batches)
    assert length_batches([5] * 7, batch_size=3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert length_batches([], batch_size=3) == []
