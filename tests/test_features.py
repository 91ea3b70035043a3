"""Features: first-piece labels per layer, everything else masked; dynamic padding."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import tiny_tokenizer

from corpora.reader import Sentence
from models.encoding import WordEncoder
from models.labels import bio_labels
from models.modeling import IGNORE
from train.features import WINDOW_INDEX, Collator, build_features

VOCAB_WORDS = ["قال", "محمد", "علي", "في", "دمشق", "الجيش", "هاجم", "."]
ENTITY_LABELS = bio_labels(["PERS", "LOC", "ORG", "MISC"])  # O B-PERS I-PERS B-LOC I-LOC B-ORG I-ORG B-MISC I-MISC
EVENT_LABELS = bio_labels(["Conflict.Attack"])  # O B-Conflict.Attack I-Conflict.Attack
LAYERS = {"entities": ENTITY_LABELS, "events": EVENT_LABELS}


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer(VOCAB_WORDS)


@pytest.fixture(scope="module")
def encoder(tokenizer):
    return WordEncoder(tokenizer, "basic", max_length=16, overlap=4)


def _pieces(tokenizer, word: str) -> list[int]:
    return tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]


def test_only_the_first_piece_of_each_word_is_labelled(encoder, tokenizer):
    # "محمدعلي" and "دمشقي" are not in the vocabulary as words; WordPiece takes the longest known prefix:
    # محمد ##ع ##ل ##ي (4 pieces) and دمشق ##ي (2 pieces)
    words = ("قال", "محمدعلي", "في", "دمشقي")
    assert len(_pieces(tokenizer, "محمدعلي")) == 4 and len(_pieces(tokenizer, "دمشقي")) == 2
    sentence = Sentence(
        words, {"entities": ("O", "B-PERS", "O", "B-LOC"), "events": ("B-Conflict.Attack", "O", "O", "O")}
    )
    [feature], [origin] = build_features([sentence], encoder, LAYERS)
    # [CLS] قال | محمد ##ع ##ل ##ي | في | دمشق ##ي [SEP]: first pieces at 1, 2, 6, 7
    assert len(feature["input_ids"]) == 1 + 1 + 4 + 1 + 2 + 1
    entities = [IGNORE] * 10
    entities[1], entities[2], entities[6], entities[7] = 0, 1, 0, 3  # O, B-PERS, O, B-LOC
    assert feature["labels_entities"] == entities
    events = [IGNORE] * 10
    events[1], events[2], events[6], events[7] = 1, 0, 0, 0  # B-Conflict.Attack, O, O, O
    assert feature["labels_events"] == events
    assert feature[WINDOW_INDEX] == 0
    assert (origin.sentence, origin.words, origin.positions) == (0, [0, 1, 2, 3], [1, 2, 6, 7])


def test_a_missing_layer_is_masked_not_o(encoder):
    sentence = Sentence(("قال", "محمد", "في", "دمشق"), {"entities": ("O", "B-PERS", "O", "B-LOC")})
    [feature], _ = build_features([sentence], encoder, LAYERS)
    assert feature["labels_events"] == [IGNORE] * len(feature["input_ids"])
    assert feature["labels_entities"] == [IGNORE, 0, 1, 0, 3, IGNORE]


def test_layers_the_config_does_not_ask_for_are_ignored(encoder):
    sentence = Sentence(("محمد",), {"entities": ("B-PERS",), "other": ("B-WHATEVER",)})
    [feature], _ = build_features([sentence], encoder, {"entities": ENTITY_LABELS})
    assert set(feature) == {"input_ids", WINDOW_INDEX, "labels_entities"}


def test_a_label_outside_the_label_set_is_an_error(encoder):
    sentences = [Sentence(("محمد", "في", "دمشق"), {"entities": ("B-PER", "O", "B-GPE")})]
    with pytest.raises(ValueError) as info:
        build_features(sentences, encoder, LAYERS, source="anercorp:train")
    message = str(info.value)
    assert "anercorp:train" in message
    assert "B-GPE" in message and "B-PER" in message
    assert "'entities'" in message
    assert str(ENTITY_LABELS) in message, "the known labels are listed too"


def test_long_sentence_each_word_labelled_once_across_windows(encoder):
    rng = random.Random(5)
    words = tuple(rng.choice(VOCAB_WORDS) for _ in range(60))
    tags = tuple(rng.choice(["O", "B-PERS", "I-PERS", "B-LOC"]) for _ in words)
    short = Sentence(("محمد",), {"entities": ("B-PERS",)})
    features, origins = build_features([short, Sentence(words, {"entities": tags})], encoder, LAYERS)
    assert len(features) > 2, "a 60-word sentence needs several 14-piece windows"
    assert [feature[WINDOW_INDEX] for feature in features] == list(range(len(features)))
    assert origins[0].sentence == 0 and all(origin.sentence == 1 for origin in origins[1:])
    labelled: list[tuple[int, int]] = []  # (word, label id) over all windows of the long sentence
    for feature, origin in zip(features[1:], origins[1:]):
        labels = feature["labels_entities"]
        assert len(labels) == len(feature["input_ids"]) <= 16
        assert [index for index, label in enumerate(labels) if label != IGNORE] == origin.positions
        labelled += [(word, labels[position]) for word, position in zip(origin.words, origin.positions)]
    assert sorted(labelled) == [(word, ENTITY_LABELS.index(tag)) for word, tag in enumerate(tags)]


# --- Collator --------------------------------------------------------------------------------------


def test_collator_pads_and_masks():
    features = [
        {
            "input_ids": [2, 10, 11, 3],
            WINDOW_INDEX: 7,
            "labels_entities": [IGNORE, 1, 2, IGNORE],
            "labels_events": [IGNORE] * 4,
        },
        {
            "input_ids": [2, 12, 3],
            WINDOW_INDEX: 3,
            "labels_entities": [IGNORE, 0, IGNORE],
            "labels_events": [IGNORE, 1, IGNORE],
        },
    ]
    batch = Collator(pad_id=0)(features)
    assert set(batch) == {"input_ids", "attention_mask", WINDOW_INDEX, "labels_entities", "labels_events"}
    assert batch["input_ids"].tolist() == [[2, 10, 11, 3], [2, 12, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels_entities"].tolist() == [[IGNORE, 1, 2, IGNORE], [IGNORE, 0, IGNORE, IGNORE]]
    assert batch["labels_events"].tolist() == [[IGNORE] * 4, [IGNORE, 1, IGNORE, IGNORE]]
    assert batch[WINDOW_INDEX].tolist() == [7, 3]
    assert all(tensor.dtype == torch.long for tensor in batch.values())
    # the inputs are not padded in place
    assert features[1]["input_ids"] == [2, 12, 3]


def test_context_words_are_read_but_never_labelled(tokenizer):
    encoder = WordEncoder(tokenizer, "basic", max_length=16, overlap=4, context=2)
    first = Sentence(("قال", "محمد"), {"entities": ("O", "B-PERS")}, document="a.txt")
    second = Sentence(("في", "دمشق"), {"entities": ("O", "B-LOC")}, document="a.txt")
    other = Sentence(("الجيش", "هاجم"), {"entities": ("B-ORG", "O")}, document="b.txt")
    features, origins = build_features([first, second, other], encoder, {"entities": ENTITY_LABELS})
    # [CLS] قال محمد | في دمشق | [SEP]: the first sentence reads the second's words after its own, and the
    # second reads the first's before; "b.txt" is another text, so neither reads it nor it them
    assert features[0]["input_ids"][1:-1] == [_pieces(tokenizer, word)[0] for word in ("قال", "محمد", "في", "دمشق")]
    assert features[0]["labels_entities"] == [IGNORE, 0, 1, IGNORE, IGNORE, IGNORE]
    assert features[1]["labels_entities"] == [IGNORE, IGNORE, IGNORE, 0, 3, IGNORE]
    assert (origins[1].words, origins[1].positions) == ([0, 1], [3, 4])
    assert features[2]["labels_entities"] == [IGNORE, 5, 0, IGNORE]


def test_collator_uses_the_given_pad_id():
    features = [{"input_ids": [5], WINDOW_INDEX: 0}, {"input_ids": [5, 6, 7], WINDOW_INDEX: 1}]
    batch = Collator(pad_id=99)(features)
    assert batch["input_ids"].tolist() == [[5, 99, 99], [5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]


def test_collator_on_real_features(encoder, tokenizer):
    sentences = [
        Sentence(("محمد",), {"entities": ("B-PERS",)}),
        Sentence(("قال", "علي", "في", "دمشق"), {"entities": ("O", "B-PERS", "O", "B-LOC")}),
    ]
    features, _ = build_features(sentences, encoder, {"entities": ENTITY_LABELS})
    batch = Collator(tokenizer.pad_token_id)(features)
    assert batch["input_ids"].shape == (2, 6)
    assert batch["input_ids"][0, 3:].tolist() == [tokenizer.pad_token_id] * 3
    assert batch["labels_entities"][0].tolist() == [IGNORE, 1, IGNORE, IGNORE, IGNORE, IGNORE]
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 6]
