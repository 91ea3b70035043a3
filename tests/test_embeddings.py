"""embeddings: seen — only rows of pieces the training data uses learn; the export is an ordinary embedding."""

from __future__ import annotations

import torch
from torch import nn

from train.embeddings import SeenRowsEmbedding, fold_seen_rows, train_seen_rows
from train.encoders import tiny_encoder


def test_only_seen_rows_change_and_folding_keeps_outputs():
    torch.manual_seed(0)
    base = nn.Embedding(10, 4)
    original = base.weight.detach().clone()
    embedding = SeenRowsEmbedding(base, [2, 5, 5])
    optimizer = torch.optim.SGD([p for p in embedding.parameters() if p.requires_grad], lr=1.0)
    ids = torch.tensor([[2, 5, 7]])  # 7 is unseen
    embedding(ids).sum().backward()
    optimizer.step()
    after = embedding(torch.arange(10)).detach()
    changed = [row for row in range(10) if not torch.allclose(after[row], original[row])]
    assert changed == [2, 5]
    merged = embedding.merged()
    assert torch.allclose(merged(torch.arange(10)), after)
    assert torch.equal(base.weight, original), "the pretrained matrix itself is never updated"


def test_encoder_round_trip():
    encoder, _ = tiny_encoder({"vocab_size": 60}, ["دمشق", "محمد"])
    encoder.eval()  # no dropout: outputs comparable
    ids = torch.tensor([[2, 7, 9, 3]])
    before = encoder(input_ids=ids).last_hidden_state
    train_seen_rows(encoder, [7, 9])
    assert torch.allclose(encoder(input_ids=ids).last_hidden_state, before), "zero correction at start"
    fold_seen_rows(encoder)
    assert type(encoder.get_input_embeddings()) is nn.Embedding
    assert set(encoder.state_dict()) == set(tiny_encoder({"vocab_size": 60}, ["دمشق", "محمد"])[0].state_dict())
