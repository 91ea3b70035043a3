"""Is the argument head or the encoder what limits the linking? Refit the head on a checkpoint's frozen features.

    python -m bench.argument_refit --checkpoint runs/e5-small-offline/model

The checkpoint reads ANERcorp-Events train, dev and test once, with the gold triggers and entities given, and
keeps each word's pooled hidden state: what its argument head scores pairs from. On those frozen features it
scores the checkpoint's own head, then trains fresh heads for as many epochs as asked and keeps each one's best
dev epoch: the same architecture, and the same with transformer layers over the sentence's word vectors
(`--context`), which give the head context of its own without moving the encoder that the tagging layers share.
Every row is labelled F1 (identification in brackets) with gold mentions, on the same test sentences. If a
refitted head does no better than the jointly trained one, more head is not the lever: the features are.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from bench.common import DEFAULT_CHECKPOINT, check_checkpoint, command_line, machine, markdown_table, write_result
from models.errors import UserError, reports_user_errors

SPLITS = ("train", "dev", "test")
BATCH = 16  # sentences per step


@dataclass
class FrozenSentence:
    vectors: object  # (words, hidden) float tensor: each word's pieces' mean hidden state
    counts: object  # (words,) pieces per word: spans pool pieces, as the Tagger does
    pairs: list  # candidate_pairs of its gold mentions
    labels: list[int]  # per pair: 0 (none) or 1 + the role's index
    gold: tuple  # its gold WordArguments


def frozen_features(tagger, sentences, encoder_layer: int | None = None) -> list[FrozenSentence]:
    """Run the checkpoint over the sentences with their gold mentions and keep what its argument head reads:
    the encoder's last layer, or the output of its layer `encoder_layer` (1 is the first)."""
    import numpy as np
    import torch

    from models.arguments import ENTITY_LAYER, NO_ROLE, TRIGGER_LAYER, candidate_pairs
    from models.labels import types_of
    from models.modeling import HIDDEN_KEY
    from models.spans import chunks

    hooks = []
    if encoder_layer is not None:  # the Tagger pools whatever the model returns as its hidden output
        kept = {}

        def ask_for_every_layer(module, args, kwargs):
            return args, {**kwargs, "output_hidden_states": True}

        def keep_layer(module, args, output):
            kept["hidden"] = output.hidden_states[encoder_layer]

        def return_layer(module, args, output):
            output[HIDDEN_KEY] = kept.pop("hidden")
            return output

        encoder = tagger.model.encoder
        hooks = [
            encoder.register_forward_pre_hook(ask_for_every_layer, with_kwargs=True),
            encoder.register_forward_hook(keep_layer),
            tagger.model.register_forward_hook(return_layer),
        ]

    captured = {}
    score_pairs = tagger._arguments

    def capture(mentions, offsets, word_sums, word_counts):
        captured.update(offsets=offsets, sums=word_sums, counts=word_counts)
        return score_pairs(mentions, offsets, word_sums, word_counts)

    tagger._arguments = capture  # this instance only: the features are what the Tagger itself computes
    mentions = [{layer: chunks(list(s.tags[layer])) for layer in (TRIGGER_LAYER, ENTITY_LAYER)} for s in sentences]
    try:
        tagger.predict_words([list(s.words) for s in sentences], [s.document for s in sentences], mentions=mentions)
    finally:
        del tagger._arguments
        for hook in hooks:
            hook.remove()
    subtypes, entity_types = types_of(tagger.layers[TRIGGER_LAYER]), types_of(tagger.layers[ENTITY_LAYER])
    roles = [NO_ROLE, *tagger.roles]
    offsets, features = captured["offsets"], []
    for index, sentence in enumerate(sentences):
        begin, end = offsets[index], offsets[index + 1]
        counts = captured["counts"][begin:end]
        pairs = candidate_pairs(mentions[index][TRIGGER_LAYER], mentions[index][ENTITY_LAYER], subtypes, entity_types)
        gold = {(argument.trigger, argument.entity): roles.index(argument.role) for argument in sentence.arguments}
        features.append(
            FrozenSentence(
                torch.from_numpy(captured["sums"][begin:end] / np.maximum(counts, 1)[:, None]),
                torch.from_numpy(counts.copy()),
                pairs,
                [gold.get((trigger[:2], entity[:2]), 0) for trigger, entity, _ in pairs],
                sentence.arguments,
            )
        )
    return features


def build_linker(tagger, context_layers: int, dropout: float):
    """The checkpoint's head architecture, optionally behind transformer layers over the sentence's words."""
    import torch
    from torch import nn

    from models.arguments import ArgumentHead, gap, span_vectors

    size = tagger.argument_head.out.in_features

    class Linker(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = ArgumentHead.for_layers(size, tagger.layers, list(tagger.roles), dropout)
            self.context = nn.ModuleList(
                # heads of 64 dimensions, as BERT's
                nn.TransformerEncoderLayer(
                    size, max(1, size // 64), 4 * size, dropout, activation="gelu", batch_first=True
                )
                for _ in range(context_layers)
            )
            self.position = nn.Embedding(512, size)  # word order: the frozen vectors carry only the pieces'

        def forward(self, batch: list[FrozenSentence]) -> torch.Tensor:
            """Logits (sentences, most pairs, 1 + roles); padded pairs are scored too and masked by the caller."""
            longest = max(len(s.counts) for s in batch)
            vectors = torch.zeros(len(batch), longest, size)
            counts = torch.zeros(len(batch), longest)
            for row, sentence in enumerate(batch):
                vectors[row, : len(sentence.counts)] = sentence.vectors
                counts[row, : len(sentence.counts)] = sentence.counts
            if len(self.context):
                words = vectors + self.position(torch.arange(longest).clamp(max=511))
                padding = counts == 0
                for layer in self.context:
                    words = layer(words, src_key_padding_mask=padding)
                vectors = words
            weights = counts.unsqueeze(-1)
            most = max(len(s.pairs) for s in batch)
            bounds = torch.zeros(len(batch), most, 6, dtype=torch.long)  # trigger, entity, gap: [first, end)
            ids = torch.zeros(len(batch), most, 5, dtype=torch.long)
            for row, sentence in enumerate(batch):
                for column, (trigger, entity, feature_ids) in enumerate(sentence.pairs):
                    spans = (*trigger[:2], *entity[:2], *gap(*trigger[:2], *entity[:2]))
                    bounds[row, column] = torch.tensor(spans)
                    ids[row, column] = torch.tensor(feature_ids)

            def pooled(first: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
                """The mean of the span's pieces, as the Tagger pools: the words' mean of vector x pieces over their
                mean of pieces (an empty gap gives zeros)."""
                return span_vectors(vectors * weights, first, end) / span_vectors(weights, first, end).clamp(min=1e-6)

            trigger, entity, between = (pooled(bounds[..., 2 * k], bounds[..., 2 * k + 1]) for k in range(3))
            return self.head.score(trigger, entity, between, ids)

    return Linker()


def predicted(linker, sentences: list[FrozenSentence], roles: list[str]) -> list[tuple]:
    import torch

    from models.arguments import WordArgument

    linker.eval()
    found = []
    with torch.no_grad():
        for start in range(0, len(sentences), BATCH):
            batch = sentences[start : start + BATCH]
            chosen = linker(batch).argmax(-1).tolist() if any(s.pairs for s in batch) else [[]] * len(batch)
            for sentence, labels in zip(batch, chosen):
                found.append(
                    tuple(
                        WordArgument(trigger[:2], entity[:2], roles[label - 1])
                        for (trigger, entity, _), label in zip(sentence.pairs, labels)
                        if label
                    )
                )
    return found


def scores(linker, sentences: list[FrozenSentence], roles: list[str]) -> tuple[float, float]:
    from eval.arguments import argument_scores

    result = argument_scores([s.gold for s in sentences], predicted(linker, sentences, roles))
    return round(100 * result["labelled"]["f1"], 2), round(100 * result["identification"]["f1"], 2)


def refit(tagger, features: dict, context_layers: int, epochs: int, learning_rate: float, seed: int) -> dict:
    """Train a fresh linker on the frozen train features; the test scores of its best dev epoch."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    shuffle = random.Random(seed)
    linker = build_linker(tagger, context_layers, dropout=0.1)
    roles = list(tagger.roles)
    train = [s for s in features["train"] if s.pairs]
    steps = epochs * -(-len(train) // BATCH)
    optimizer = torch.optim.AdamW(linker.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, learning_rate, total_steps=steps, pct_start=0.06, anneal_strategy="linear"
    )
    best = {"dev": (-1.0, -1.0)}
    for epoch in range(1, epochs + 1):
        linker.train()
        shuffle.shuffle(train)
        for start in range(0, len(train), BATCH):
            batch = train[start : start + BATCH]
            logits = linker(batch)
            labels = torch.full(logits.shape[:2], -100, dtype=torch.long)  # padded pairs: no loss
            for row, sentence in enumerate(batch):
                labels[row, : len(sentence.labels)] = torch.tensor(sentence.labels)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        dev = scores(linker, features["dev"], roles)
        if dev > best["dev"]:
            best = {"epoch": epoch, "dev": dev, "test": scores(linker, features["test"], roles)}
    return best


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.argument_refit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data", default="anercorp-events", help="a corpus of configs/corpora.yaml with arguments")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of each refit (default 12)")
    parser.add_argument(
        "--context", type=int, nargs="*", default=[0, 1], help="context layers of each refitted row (default: 0 1)"
    )
    parser.add_argument(
        "--encoder-layer",
        type=int,
        default=None,
        help="refit on the output of this encoder layer (1 is the first; default: the last, which the head reads)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="folder of the result files (default runs/bench)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or any(layers < 0 for layers in args.context):
        raise UserError("--epochs must be at least 1 and --context layers at least 0")
    checkpoint = check_checkpoint(args.checkpoint)
    from corpora.reader import data_root, load_split
    from models import Tagger

    tagger = Tagger.load(checkpoint, device="cpu", precision="fp32")
    if tagger.argument_head is None:
        raise UserError(f"{checkpoint} has no argument head (tagger.json has no roles)")
    depth = tagger.model.encoder.config.num_hidden_layers
    if args.encoder_layer is not None and not 1 <= args.encoder_layer <= depth:
        raise UserError(
            f"--encoder-layer must be between 1 and {depth} (the encoder's layers), got {args.encoder_layer}"
        )
    root = data_root()
    features = {}
    for split in SPLITS:
        annotated = [s for s in load_split(f"{args.data}:{split}", root) if s.arguments is not None]
        if not annotated:
            raise UserError(f"{args.data}:{split} has no sentences with arguments")
        features[split] = frozen_features(tagger, annotated, args.encoder_layer)
    roles = list(tagger.roles)
    rows, results = [], {}
    if args.encoder_layer in (None, depth):  # the checkpoint's head reads the last layer only
        own = build_linker(tagger, 0, dropout=0.1)
        own.head.load_state_dict(tagger.argument_head.state_dict())
        rows.append(["the checkpoint's head (trained jointly)", "", *scores(own, features["dev"], roles)])
        rows[0].extend(scores(own, features["test"], roles))
        results["checkpoint"] = {"dev": rows[0][2:4], "test": rows[0][4:6]}
    for layers in args.context:
        name = f"refitted head, {layers} context layer{'s' * (layers != 1)}"
        learning_rate = 1e-3 if layers == 0 else 3e-4  # a transformer layer trained from scratch wants a smaller one
        best = refit(tagger, features, layers, args.epochs, learning_rate, args.seed)
        results[name] = best
        rows.append([name, str(best["epoch"]), *best["dev"], *best["test"]])
        print(name, best, flush=True)
    counts = {split: sum(len(s.gold) for s in features[split]) for split in SPLITS}
    table = markdown_table(
        ["head on frozen features", "best dev epoch", "dev F1", "(ident.)", "test F1", "(ident.)"],
        rows,
        right={1, 2, 3, 4, 5},
    )
    text = (
        f"Arguments with gold mentions, {args.data}: labelled F1 and identification, on the frozen features "
        f"(encoder layer {args.encoder_layer or depth} of {depth}) of {checkpoint} (gold arguments: {counts}; "
        f"{args.epochs} epochs per refit, seed {args.seed}).\n\n"
        f"{table}\n\nMachine: {machine()}\nCommand: {command_line('bench.argument_refit', argv)}"
    )
    print(text)
    write_result(
        "argument-refit",
        text,
        {
            "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            **results,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
