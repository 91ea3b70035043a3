"""The network: one pretrained encoder (any AutoModel), one linear token-classification head per layer and,
with roles, an argument head that links event triggers to entities (models/arguments.py)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from models.arguments import ARGUMENT_KEY, ArgumentHead

IGNORE = -100  # label id for positions that carry no loss (non-first pieces, specials, unannotated layers)
# How a word's logits come from its pieces: "first" (its first piece's, as transformers' token classification
# does) or "mean" (the mean over all its pieces: an Arabic word's first piece is often only a clitic or a bare
# `▁`, e.g. `▁و|اع|تقال|ات`). The head is linear, so the mean of the logits is the head of the mean hidden state.
WORD_POOLINGS = ("first", "mean")
HIDDEN_KEY = "hidden"  # the encoder output, returned for the Tagger to score argument pairs from
PAIRS_KEY = "argument_pairs"  # the forward argument: (batch, pairs, PAIR_COLUMNS) of gold-span pairs


def label_key(layer: str) -> str:
    return f"labels_{layer}"


def pool_word_pieces(logits: torch.Tensor, word_starts: torch.Tensor) -> torch.Tensor:
    """logits (batch, length, labels) with each word's first-piece position holding the mean of the logits of all
    the word's pieces; word_starts (batch, length) maps each position to its word's first piece. Only the
    first-piece positions are meaningful afterwards (the others hold zeros)."""
    logits = logits.float()
    summed = torch.zeros_like(logits).scatter_add_(1, word_starts.unsqueeze(-1).expand_as(logits), logits)
    counts = torch.zeros(word_starts.shape, dtype=logits.dtype, device=logits.device)
    counts.scatter_add_(1, word_starts, torch.ones_like(counts))
    return summed / counts.clamp(min=1).unsqueeze(-1)


class MultiHeadTagger(nn.Module):
    def __init__(
        self,
        encoder: PreTrainedModel,
        layers: dict[str, list[str]],
        dropout: float = 0.1,
        loss_weights: dict[str, float] | None = None,
        roles: list[str] | None = None,
    ):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused by tagging; unused parameters would also break DDP
        self.encoder = encoder
        self.layers = {name: list(labels) for name, labels in layers.items()}
        self.roles = list(roles or [])
        weighted = [*layers, ARGUMENT_KEY] if self.roles else list(layers)
        self.loss_weights = {name: float((loss_weights or {}).get(name, 1.0)) for name in weighted}
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, len(labels)) for name, labels in layers.items()})
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=getattr(encoder.config, "initializer_range", 0.02))
            nn.init.zeros_(head.bias)
        self.argument_head = None
        if self.roles:
            self.argument_head = ArgumentHead.for_layers(hidden, layers, self.roles, dropout)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_starts: torch.Tensor | None = None,
        argument_pairs: torch.Tensor | None = None,
        **labels: torch.Tensor,
    ) -> dict:
        """Per-piece logits per layer, or with word_starts (a "mean" word_pooling run) each word's mean at its
        first piece; labels sit at first pieces either way. With an argument head: role logits of the
        argument_pairs given (training), or without them the encoder output (the Tagger scores its own pairs)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.dropout(hidden)
        outputs: dict[str, torch.Tensor] = {}
        loss = None
        for name, head in self.heads.items():
            logits = head(hidden)
            if word_starts is not None:
                logits = pool_word_pieces(logits, word_starts)
            outputs[name] = logits
        if self.argument_head is not None:
            if argument_pairs is not None:
                outputs[ARGUMENT_KEY] = self.argument_head.forward_pairs(hidden, argument_pairs)
            else:
                outputs[HIDDEN_KEY] = hidden
        for name, logits in outputs.items():
            gold = labels.get(label_key(name))
            if gold is None:
                continue
            annotated = gold != IGNORE
            if annotated.any():
                weighted = self.loss_weights[name] * nn.functional.cross_entropy(
                    logits[annotated].float(), gold[annotated]
                )
            else:  # nobody in the batch annotates this layer: no loss, not "all O"; zero keeps the head in the
                weighted = logits.sum() * 0.0  # graph, as DDP needs every parameter used in every step
            loss = weighted if loss is None else loss + weighted
        if loss is None and labels:
            loss = hidden.sum() * 0.0  # keeps the graph (and DDP) alive on an all-unannotated batch
        return {"loss": loss, **outputs} if loss is not None else outputs
