"""Event arguments: which named entities take part in each event trigger, and as what (Agent, Patient, Place).

A pair is one trigger span and one entity span of the same sentence, both given as word ranges
[first, end). The argument head scores every pair of a sentence with a role or "none" from one
vector per span (the mean of the span's pieces' hidden states, as a word's are pooled), their
product, the mean of the words between them (what links them: a preposition, a verb, a comma
before another clause), and embeddings of the trigger's subtype, the entity's type, the signed
word distance between them (bucketed) and how many other entities and triggers lie between them
(the nearest name before a verb is its doer far more often than one behind another name). It reads the
encoder output the tagging heads read: one pass gives all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from models.labels import types_of

NO_ROLE = "none"  # class 0 of the argument head: the entity takes no part in the event
TRIGGER_LAYER = "events"  # arguments link spans of this layer ...
ENTITY_LAYER = "entities"  # ... to spans of this one
ARGUMENT_KEY = "arguments"  # the head's name in outputs, labels, heads.safetensors and tagger.json
# signed word distance from the trigger's first word to the entity's first word, in buckets: exact up to
# +-4, then widening (5-7, 8-15, 16-31, 32+) on each side
DISTANCE_EDGES = (1, 2, 3, 4, 5, 8, 16, 32)
N_DISTANCE_BUCKETS = 2 * len(DISTANCE_EDGES) + 1
MOST_BETWEEN = 3  # other entities (or triggers) between a pair's spans are counted up to this: "3 or more"


@dataclass(frozen=True, order=True)
class WordArgument:
    """One argument of one sentence, in word indices."""

    trigger: tuple[int, int]  # [first, end) of the trigger span
    entity: tuple[int, int]  # [first, end) of the entity span
    role: str
    # the role's probability when predicted; not part of the argument's identity (metrics compare sets)
    score: float = field(default=1.0, compare=False)


def distance_bucket(trigger_first: int, entity_first: int) -> int:
    """0 .. N_DISTANCE_BUCKETS-1; the middle bucket is distance 0 (the same first word)."""
    distance = entity_first - trigger_first
    magnitude = sum(abs(distance) >= edge for edge in DISTANCE_EDGES)
    return len(DISTANCE_EDGES) + (magnitude if distance >= 0 else -magnitude)


def span_vectors(hidden: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """The mean hidden state of the pieces [start, end) of each span: hidden (batch, length, size), starts and
    ends (batch, spans) piece positions -> (batch, spans, size). An empty range (padding) gives zeros."""
    hidden = hidden.float()
    totals = torch.cat([hidden.new_zeros(hidden.shape[0], 1, hidden.shape[2]), hidden.cumsum(1)], 1)

    def at(positions: torch.Tensor) -> torch.Tensor:
        return totals.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[2]))

    counts = (ends - starts).clamp(min=1).unsqueeze(-1).to(hidden.dtype)
    return (at(ends) - at(starts)) / counts


def gap(trigger_start, trigger_end, entity_start, entity_end):
    """[start, end) of what lies between two spans, in pieces or words (tensors or ints); empty where they touch
    or overlap."""
    lower, upper = (torch.minimum, torch.maximum) if isinstance(trigger_end, torch.Tensor) else (min, max)
    start = lower(trigger_end, entity_end)
    return start, upper(start, upper(trigger_start, entity_start))


# columns of a pair row (train/features.py builds them, ArgumentHead.forward_pairs reads them)
PAIR_COLUMNS = (
    "trigger_start",
    "trigger_end",
    "entity_start",
    "entity_end",  # piece positions in the window
    "subtype",
    "entity_type",
    "distance",
    "entities_between",
    "triggers_between",
)  # feature ids


class ArgumentHead(nn.Module):
    """Role logits (none, then one per role) of (trigger, entity) pairs."""

    def __init__(
        self,
        hidden_size: int,
        n_subtypes: int,
        n_entity_types: int,
        roles: list[str],
        dropout: float = 0.1,
        feature_size: int = 32,
    ):
        super().__init__()
        self.roles = list(roles)
        self.subtype = nn.Embedding(n_subtypes, feature_size)
        self.entity_type = nn.Embedding(n_entity_types, feature_size)
        self.distance = nn.Embedding(N_DISTANCE_BUCKETS, feature_size)
        self.entities_between = nn.Embedding(MOST_BETWEEN + 1, feature_size)
        self.triggers_between = nn.Embedding(MOST_BETWEEN + 1, feature_size)
        self.hidden = nn.Linear(4 * hidden_size + 5 * feature_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, 1 + len(self.roles))

    @classmethod
    def for_layers(
        cls, hidden_size: int, layers: dict[str, list[str]], roles: list[str], dropout: float = 0.1
    ) -> ArgumentHead:
        """The head for a model's layers (their BIO labels): one embedding per event subtype and entity type."""
        return cls(
            hidden_size, len(types_of(layers[TRIGGER_LAYER])), len(types_of(layers[ENTITY_LAYER])), roles, dropout
        )

    def score(
        self, trigger: torch.Tensor, entity: torch.Tensor, between: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """Logits (..., 1 + roles) from the vectors (..., size) of the two spans and of what lies between them,
        and the pairs' feature ids (..., 5: the PAIR_COLUMNS from subtype on)."""
        embedded = [
            table(ids[..., column])
            for column, table in enumerate(
                (self.subtype, self.entity_type, self.distance, self.entities_between, self.triggers_between)
            )
        ]
        features = torch.cat([trigger, entity, trigger * entity, between, *embedded], -1)
        return self.out(self.dropout(nn.functional.gelu(self.hidden(features))))

    def forward_pairs(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits (batch, pairs, 1 + roles) of the pairs (batch, pairs, PAIR_COLUMNS) of each window."""
        trigger = span_vectors(hidden, pairs[..., 0], pairs[..., 1])
        entity = span_vectors(hidden, pairs[..., 2], pairs[..., 3])
        between = span_vectors(hidden, *gap(pairs[..., 0], pairs[..., 1], pairs[..., 2], pairs[..., 3]))
        return self.score(trigger, entity, between, pairs[..., 4:])


Mention = tuple[int, int, str]  # a span of one sentence: first word, end word (exclusive), label


def candidate_pairs(
    triggers: list[Mention], entities: list[Mention], subtypes: list[str], entity_types: list[str]
) -> list[tuple[Mention, Mention, tuple[int, ...]]]:
    """Every (trigger, entity) pair of one sentence with its feature ids (PAIR_COLUMNS from subtype on): the pairs
    the argument head scores, from gold spans in training and from predicted ones at inference."""
    subtype_ids = {label: index for index, label in enumerate(subtypes)}
    type_ids = {label: index for index, label in enumerate(entity_types)}

    def between(spans: list[Mention], start: int, end: int) -> int:
        return min(MOST_BETWEEN, sum(start <= first and last <= end for first, last, _ in spans))

    pairs = []
    for trigger in triggers:
        for entity in entities:
            start, end = gap(trigger[0], trigger[1], entity[0], entity[1])
            pairs.append(
                (
                    trigger,
                    entity,
                    (
                        subtype_ids[trigger[2]],
                        type_ids[entity[2]],
                        distance_bucket(trigger[0], entity[0]),
                        between(entities, start, end),
                        between(triggers, start, end),
                    ),
                )
            )
    return pairs
