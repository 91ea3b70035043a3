"""Is the argument head or the encoder what limits the linking? Refit the head on a checkpoint's frozen features.

    python -m bench.argument_refit --checkpoint runs/e5-small-offline/model

The checkpoint reads ANERcorp-Events train, dev and test once, with the gold triggers and entities given, and
keeps each word's pooled hidden state: what its argument head scores pairs from. On those frozen features it
scores the checkpoint's own head, then trains fresh heads for as many epochs as asked and keeps each one's best
dev epoch: the same architecture, and the same with transformer layers over the sentence's word vectors
(`--context`), which give the head context of its own without moving the encoder that the tagging layers share,
and with `--attention` the same plus what each of the encoder's attention heads links between the pair's spans.
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
    attention: object = None  # (pairs, 2 x layers x heads) float tensor with --attention: attention_features


def linking_data(checkpoint: Path, data: str):
    """The checkpoint's Tagger (fp32, on the CPU) and, per split of `data`, its sentences with arguments."""
    from corpora.reader import data_root, load_split
    from models import Tagger

    tagger = Tagger.load(checkpoint, device="cpu", precision="fp32")
    if tagger.argument_head is None:
        raise UserError(f"{checkpoint} has no argument head (tagger.json has no roles)")
    sentences = {}
    for split in SPLITS:
        sentences[split] = [s for s in load_split(f"{data}:{split}", data_root()) if s.arguments is not None]
        if not sentences[split]:
            raise UserError(f"{data}:{split} has no sentences with arguments")
    return tagger, sentences


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


def attention_features(tagger, sentences, features: list[FrozenSentence]) -> int:
    """Set each pair's attention features: per encoder layer and head, the attention the trigger's pieces pay to the
    entity's (their mean over the trigger's pieces of the sum over the entity's) and back, on a log scale. Heads of
    BERT-style encoders are known to track syntactic relations (a verb's subject, its object), which the pooled
    span vectors may not carry. Each pair is read in the first window that holds both spans whole; returns how
    many pairs no window holds (their features stay zero)."""
    import torch

    from train.features import window_reads

    encoder = tagger.model.encoder
    implementation = encoder.config._attn_implementation
    encoder.set_attn_implementation("eager")  # sdpa computes attention without returning it
    size = 2 * encoder.config.num_hidden_layers * encoder.config.num_attention_heads
    unread = 0
    try:
        windows = tagger.encoder.encode([list(s.words) for s in sentences], [s.document for s in sentences])
        for sentence_windows, frozen in zip(windows, features):
            if not frozen.pairs:
                continue
            maps = []
            for window in sentence_windows:
                ids = torch.tensor([window.input_ids])
                with torch.no_grad():
                    attentions = encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
                maps.append(torch.stack(attentions.attentions, 0)[:, 0])  # layers, heads, pieces, pieces
            rows = []
            for trigger, entity, _ in frozen.pairs:
                row = torch.zeros(size)
                for window, attention in zip(sentence_windows, maps):
                    if window_reads(window, trigger, entity):
                        t0, t1, e0, e1 = (
                            window.word_bounds[word - window.first_word]
                            for span in (trigger, entity)
                            for word in span[:2]
                        )
                        paid = [
                            attention[:, :, t0:t1, e0:e1].sum(-1).mean(-1),
                            attention[:, :, e0:e1, t0:t1].sum(-1).mean(-1),
                        ]
                        row = torch.log(torch.cat([mass.flatten() for mass in paid]) + 1e-4)
                        break
                else:
                    unread += 1
                rows.append(row)
            frozen.attention = torch.stack(rows)
    finally:
        encoder.set_attn_implementation(implementation)
    return unread


def standardise_attention(features: dict) -> None:
    """Each attention feature to mean 0 and deviation 1 on train, so that no layer's scale dominates."""
    import torch

    train = torch.cat([s.attention for s in features["train"] if s.attention is not None])
    mean, deviation = train.mean(0), train.std(0).clamp(min=1e-6)
    for sentences in features.values():
        for sentence in sentences:
            if sentence.attention is not None:
                sentence.attention = (sentence.attention - mean) / deviation


def build_linker(tagger, context_layers: int, dropout: float, attention_size: int = 0):
    """The checkpoint's head architecture, optionally behind transformer layers over the sentence's words, and
    with attention_size: plus logits from the pairs' attention features (a small MLP of their own)."""
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
            self.attention = (
                nn.Sequential(
                    nn.Dropout(dropout), nn.Linear(attention_size, 64), nn.GELU(), nn.Linear(64, 1 + len(tagger.roles))
                )
                if attention_size
                else None
            )

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
            logits = self.head.score(trigger, entity, between, ids)
            if self.attention is not None:
                attention = torch.zeros(len(batch), most, self.attention[1].in_features)
                for row, sentence in enumerate(batch):
                    if sentence.pairs:
                        attention[row, : len(sentence.pairs)] = sentence.attention
                logits = logits + self.attention(attention)
            return logits

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


def f1s(gold: list, found: list) -> tuple[float, float]:
    """Labelled and identification F1 (%) of the arguments found, per sentence, against gold: eval's metric."""
    from eval.arguments import argument_scores

    result = argument_scores(gold, found)
    return round(100 * result["labelled"]["f1"], 2), round(100 * result["identification"]["f1"], 2)


def scores(linker, sentences: list[FrozenSentence], roles: list[str]) -> tuple[float, float]:
    return f1s([s.gold for s in sentences], predicted(linker, sentences, roles))


def refit(
    tagger, features: dict, context_layers: int, epochs: int, learning_rate: float, seed: int, attention_size: int = 0
) -> dict:
    """Train a fresh linker on the frozen train features; the test scores of its best dev epoch."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    shuffle = random.Random(seed)
    linker = build_linker(tagger, context_layers, dropout=0.1, attention_size=attention_size)
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
    parser.add_argument(
        "--attention",
        action="store_true",
        help="one more row: a fresh head plus the encoder's attention between each pair's spans (attention_features)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="folder of the result files (default runs/bench)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or any(layers < 0 for layers in args.context):
        raise UserError("--epochs must be at least 1 and --context layers at least 0")
    checkpoint = check_checkpoint(args.checkpoint)
    tagger, sentences = linking_data(checkpoint, args.data)
    depth = tagger.model.encoder.config.num_hidden_layers
    if args.encoder_layer is not None and not 1 <= args.encoder_layer <= depth:
        raise UserError(
            f"--encoder-layer must be between 1 and {depth} (the encoder's layers), got {args.encoder_layer}"
        )
    features = {split: frozen_features(tagger, sentences[split], args.encoder_layer) for split in SPLITS}
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
    unread = None
    if args.attention:
        unread = {split: attention_features(tagger, sentences[split], features[split]) for split in SPLITS}
        standardise_attention(features)
        size = next(s.attention.shape[1] for s in features["train"] if s.attention is not None)
        name = f"refitted head + attention maps ({size} per pair)"
        best = refit(tagger, features, 0, args.epochs, 1e-3, args.seed, attention_size=size)
        results["refitted head + attention maps"] = {**best, "pairs no window holds whole": unread}
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
        f"{args.epochs} epochs per refit, seed {args.seed})."
        + (f" Pairs whose spans no window holds whole (no attention features): {unread}." if unread else "")
        + f"\n\n{table}\n\nMachine: {machine()}\nCommand: {command_line('bench.argument_refit', argv)}"
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
