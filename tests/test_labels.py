"""Label sets and BIO handling: what the rest of the project may rely on."""

from __future__ import annotations

import pytest

from models.labels import TagError, bio_labels, chunks, split_tag, to_iob2, types_of

# --- to_iob2: IOB1 in, IOB2 out, repairs counted -------------------------------------------------


@pytest.mark.parametrize(
    "tags, expected, repaired",
    [
        # I-X after O starts a chunk: B-X
        (["O", "I-PERS", "I-PERS", "O"], ["O", "B-PERS", "I-PERS", "O"], 1),
        # I-X at sentence start
        (["I-LOC", "O"], ["B-LOC", "O"], 1),
        # I-X after another type
        (["B-PERS", "I-LOC", "I-LOC"], ["B-PERS", "B-LOC", "I-LOC"], 1),
        (["I-ORG", "I-PERS", "O", "I-MISC"], ["B-ORG", "B-PERS", "O", "B-MISC"], 3),
        # I-X after B-X or I-X of the same type continues the chunk: untouched
        (["B-PERS", "I-PERS", "I-PERS"], ["B-PERS", "I-PERS", "I-PERS"], 0),
        # IOB2 already, with adjacent chunks of the same type
        (["B-LOC", "B-LOC", "O"], ["B-LOC", "B-LOC", "O"], 0),
        ([], [], 0),
    ],
)
def test_to_iob2_repairs_chunk_initial_i_and_counts_them(tags, expected, repaired):
    assert to_iob2(tags) == (expected, repaired)


def test_to_iob2_does_not_modify_its_input():
    tags = ["I-PERS", "O"]
    to_iob2(tags)
    assert tags == ["I-PERS", "O"]


def test_to_iob2_rejects_bad_tags():
    with pytest.raises(TagError):
        to_iob2(["O", "B_PERS"])


# --- split_tag -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("O", ("O", None)),
        ("B-PERS", ("B", "PERS")),
        ("I-LOC", ("I", "LOC")),
        ("B-Conflict.Attack", ("B", "Conflict.Attack")),
        ("I-Personnel.End_Position", ("I", "Personnel.End_Position")),
    ],
)
def test_split_tag_good_shapes(tag, expected):
    assert split_tag(tag) == expected


@pytest.mark.parametrize(
    "tag", ["X-PERS", "B-", "I-", "b-PERS", "B PERS", "B_PERS", "BPERS", "o", "", "-PERS", "B-PE RS"]
)
def test_split_tag_rejects_bad_shapes(tag):
    with pytest.raises(TagError) as info:
        split_tag(tag)
    assert repr(tag) in str(info.value)  # the message quotes the offending tag


def test_tag_error_is_a_value_error():
    assert issubclass(TagError, ValueError)


# --- chunks: (start, end exclusive, type) ----------------------------------------------------------


@pytest.mark.parametrize(
    "tags, expected",
    [
        ([], []),
        (["O", "O"], []),
        (["B-PERS"], [(0, 1, "PERS")]),
        (["B-PERS", "I-PERS", "O", "B-LOC"], [(0, 2, "PERS"), (3, 4, "LOC")]),
        # a chunk running to the end of the sentence is closed
        (["O", "B-ORG", "I-ORG", "I-ORG"], [(1, 4, "ORG")]),
        # adjacent chunks of one type: B-X B-X is two chunks
        (["B-LOC", "B-LOC"], [(0, 1, "LOC"), (1, 2, "LOC")]),
        (["B-LOC", "I-LOC", "B-LOC", "I-LOC"], [(0, 2, "LOC"), (2, 4, "LOC")]),
        # type change: B-X I-Y is two chunks
        (["B-PERS", "I-LOC"], [(0, 1, "PERS"), (1, 2, "LOC")]),
        # a stray I-X starts a chunk
        (["O", "I-MISC", "I-MISC"], [(1, 3, "MISC")]),
        # event-style labels with dots and underscores
        (
            ["O", "B-Conflict.Attack", "O", "B-Personnel.End_Position", "I-Personnel.End_Position"],
            [(1, 2, "Conflict.Attack"), (3, 5, "Personnel.End_Position")],
        ),
    ],
)
def test_chunks(tags, expected):
    assert chunks(tags) == expected


def test_chunks_does_not_modify_its_input():
    tags = ["B-PERS", "I-PERS"]
    chunks(tags)
    assert tags == ["B-PERS", "I-PERS"]


# --- label sets ------------------------------------------------------------------------------------


def test_bio_labels_order():
    assert bio_labels(["PERS", "LOC"]) == ["O", "B-PERS", "I-PERS", "B-LOC", "I-LOC"]
    assert bio_labels([]) == ["O"]


@pytest.mark.parametrize(
    "types",
    [
        ["PERS", "LOC", "ORG", "MISC"],
        ["MISC", "PERS"],  # the order given, not sorted
        ["Conflict.Attack", "Personnel.End_Position", "Life.Die"],
    ],
)
def test_bio_labels_types_of_round_trip(types):
    assert types_of(bio_labels(types)) == types


def test_types_of_first_appearance():
    assert types_of(["O", "I-LOC", "B-PERS", "B-LOC"]) == ["LOC", "PERS"]


def test_bio_labels_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        bio_labels(["PERS", "LOC", "PERS"])
