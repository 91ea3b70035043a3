"""Would a second encoder pass, with the trigger marked in the text, link arguments better than the pooled head?

    python -m bench.argument_marked --checkpoint runs/e5-small-offline/model

The strongest recipe for relations in the literature reads each candidate with typed markers in the input instead
of pooling spans from one shared pass. Here every gold trigger of a sentence is one input: the trigger is wrapped
as `@ * subtype * words @` and every entity of the sentence as `# type words #`, and a copy of the checkpoint's
encoder is fine-tuned to give each entity a role (or none) from the states of the trigger's and the entity's
opening markers. Gold mentions are given, as in `python -m eval`'s linking score; each epoch is scored on dev and
test, and the best dev epoch's test score is the result (labelled F1, identification in brackets), to set
against the pooled head's. It costs a whole second fine-tuning and, at inference, one more encoder pass per
trigger: worth building into the Tagger only if it moves the linking far.
"""

from __future__ import annotations

import argparse
import copy
import random
from dataclasses import dataclass
from pathlib import Path

from bench.argument_refit import SPLITS, f1s, linking_data
from bench.common import DEFAULT_CHECKPOINT, check_checkpoint, command_line, machine, markdown_table, write_result
from models.errors import UserError, reports_user_errors

TRIGGER_MARK, ENTITY_MARK, TYPE_MARK = "@", "#", "*"


@dataclass
class MarkedInput:
    """One trigger of one sentence, read with its markers."""

    sentence: int  # index in its split
    trigger: tuple  # (first, end, subtype)
    input_ids: list[int]
    trigger_at: int  # position of the trigger's opening marker
    entities: list[tuple]  # (first, end, type) of each entity whose opening marker fits in input_ids ...
    entity_at: list[int]  # ... and that marker's position
    labels: list[int]  # per entity: 0 (none) or 1 + the role's index


def marked_inputs(tokenizer, word_pieces, sentences, roles: list[str], max_length: int) -> list[MarkedInput]:
    """One MarkedInput per gold trigger of each sentence with at least one entity. word_pieces: each sentence's
    words as piece ids (the Tagger's own normalisation and tokenizer: WordEncoder.pieces). An entity whose
    opening marker lies past max_length is not scored (its arguments count as missed)."""
    from models.arguments import ENTITY_LAYER, NO_ROLE, TRIGGER_LAYER
    from models.spans import chunks

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def type_words(label: str) -> list[int]:  # `Conflict.Attack` -> `conflict attack`: words the encoder knows
        return ids(label.replace(".", " ").replace("_", " ").lower())

    trigger_mark, entity_mark, type_mark = ids(TRIGGER_MARK), ids(ENTITY_MARK), ids(TYPE_MARK)
    labels = [NO_ROLE, *roles]
    inputs = []
    for index, (sentence, pieces) in enumerate(zip(sentences, word_pieces)):
        entities = chunks(list(sentence.tags[ENTITY_LAYER]))
        gold = {(argument.trigger, argument.entity): labels.index(argument.role) for argument in sentence.arguments}
        for trigger in chunks(list(sentence.tags[TRIGGER_LAYER])) if entities else ():
            sequence, trigger_at, entity_at = [tokenizer.cls_token_id], 0, {}
            for word, word_ids in enumerate(pieces):
                if word == trigger[0]:
                    trigger_at = len(sequence)
                    sequence += trigger_mark + type_mark + type_words(trigger[2]) + type_mark
                for entity in entities:
                    if entity[0] == word:
                        entity_at[entity] = len(sequence)
                        sequence += entity_mark + type_words(entity[2])
                sequence += word_ids
                sequence += trigger_mark if word + 1 == trigger[1] else []
                sequence += [piece for entity in entities if entity[1] == word + 1 for piece in entity_mark]
            if trigger_at >= max_length - 1:
                continue  # nothing to read the trigger from: all its arguments count as missed
            kept = [entity for entity in entities if entity_at[entity] < max_length - 1]
            inputs.append(
                MarkedInput(
                    index,
                    trigger,
                    sequence[: max_length - 1] + [tokenizer.sep_token_id],
                    trigger_at,
                    kept,
                    [entity_at[entity] for entity in kept],
                    [gold.get((trigger[:2], entity[:2]), 0) for entity in kept],
                )
            )
    return inputs


def build_linker(encoder, n_labels: int, dropout: float = 0.1):
    import torch
    from torch import nn

    class MarkedLinker(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            size = encoder.config.hidden_size
            self.dropout = nn.Dropout(dropout)
            self.hidden = nn.Linear(3 * size, size)
            self.out = nn.Linear(size, n_labels)

        def forward(self, batch: list[MarkedInput], pad_id: int, precision: str) -> torch.Tensor:
            """Logits (entities of the whole batch, n_labels), in the batch's order."""
            length = max(len(item.input_ids) for item in batch)
            input_ids = torch.full((len(batch), length), pad_id)
            mask = torch.zeros(len(batch), length, dtype=torch.long)
            for row, item in enumerate(batch):
                input_ids[row, : len(item.input_ids)] = torch.tensor(item.input_ids)
                mask[row, : len(item.input_ids)] = 1
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            hidden = self.dropout(hidden.float())
            rows = [row for row, item in enumerate(batch) for _ in item.entity_at]
            trigger = hidden[rows, [item.trigger_at for item in batch for _ in item.entity_at]]
            entity = hidden[rows, [position for item in batch for position in item.entity_at]]
            features = torch.cat([trigger, entity, trigger * entity], -1)
            return self.out(self.dropout(nn.functional.gelu(self.hidden(features))))

    return MarkedLinker()


def linked(linker, inputs: list[MarkedInput], n_sentences: int, roles: list[str], pad_id: int, precision: str):
    """The arguments the linker finds, per sentence (WordArguments)."""
    import torch

    from models.arguments import WordArgument

    linker.eval()
    found = [[] for _ in range(n_sentences)]
    with torch.no_grad():
        for start in range(0, len(inputs), 32):
            batch = [item for item in inputs[start : start + 32] if item.entities]
            if not batch:
                continue
            chosen = iter(linker(batch, pad_id, precision).argmax(-1).tolist())
            for item in batch:
                for entity in item.entities:
                    label = next(chosen)
                    if label:
                        found[item.sentence].append(WordArgument(item.trigger[:2], entity[:2], roles[label - 1]))
    return [tuple(arguments) for arguments in found]


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.argument_marked", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="its encoder is the start")
    parser.add_argument("--data", default="anercorp-events", help="a corpus of configs/corpora.yaml with arguments")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="the encoder's (the head's is 10x)")
    parser.add_argument("--max-length", type=int, default=256, help="pieces per input, markers included")
    # bf16 autocast, as the offline default trains: this CPU's AVX512-BF16 makes the steps faster
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="folder of the result files (default runs/bench)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.max_length < 16:
        raise UserError("--epochs and --batch-size must be at least 1, --max-length at least 16")
    checkpoint = check_checkpoint(args.checkpoint)
    import torch
    from torch import nn

    torch.manual_seed(args.seed)
    shuffle = random.Random(args.seed)
    tagger, sentences = linking_data(checkpoint, args.data)
    roles, tokenizer = list(tagger.roles), tagger.encoder.tokenizer
    inputs = {
        split: marked_inputs(
            tokenizer,
            tagger.encoder.pieces([list(s.words) for s in sentences[split]]),
            sentences[split],
            roles,
            args.max_length,
        )
        for split in SPLITS
    }
    gold = {split: [s.arguments for s in sentences[split]] for split in SPLITS}
    linker = build_linker(copy.deepcopy(tagger.model.encoder), 1 + len(roles))
    head = [parameter for name, parameter in linker.named_parameters() if not name.startswith("encoder.")]
    rates = [args.learning_rate, 10 * args.learning_rate]
    optimizer = torch.optim.AdamW(
        [{"params": linker.encoder.parameters(), "lr": rates[0]}, {"params": head, "lr": rates[1]}], weight_decay=0.01
    )
    train = [item for item in inputs["train"] if item.entities]
    steps = args.epochs * -(-len(train) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, rates, total_steps=steps, pct_start=0.06, anneal_strategy="linear"
    )
    rows, best = [], None
    for epoch in range(1, args.epochs + 1):
        linker.train()
        # batches of similar length (little padding), in random order
        order = sorted(train, key=lambda item: len(item.input_ids) + 32 * shuffle.random())
        batches = [order[start : start + args.batch_size] for start in range(0, len(order), args.batch_size)]
        shuffle.shuffle(batches)
        for batch in batches:
            labels = torch.tensor([label for item in batch for label in item.labels])
            loss = nn.functional.cross_entropy(linker(batch, tokenizer.pad_token_id, args.precision), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        scored = {
            split: f1s(
                gold[split],
                linked(linker, inputs[split], len(sentences[split]), roles, tokenizer.pad_token_id, args.precision),
            )
            for split in ("dev", "test")
        }
        rows.append([str(epoch), *scored["dev"], *scored["test"]])
        print(f"epoch {epoch}: dev {scored['dev']}, test {scored['test']}", flush=True)
        if best is None or scored["dev"] > best["dev"]:
            best = {"epoch": epoch, **scored}
    # gold arguments no input reads (their trigger or entity marker past --max-length): missed in every score
    read = {
        split: {(item.sentence, item.trigger[:2], entity[:2]) for item in inputs[split] for entity in item.entities}
        for split in SPLITS
    }
    unread = {
        split: sum(
            (index, argument.trigger, argument.entity) not in read[split]
            for index, arguments in enumerate(gold[split])
            for argument in arguments
        )
        for split in SPLITS
    }
    table = markdown_table(["epoch", "dev F1", "(ident.)", "test F1", "(ident.)"], rows, right={0, 1, 2, 3, 4})
    counts = {split: sum(len(arguments) for arguments in gold[split]) for split in SPLITS}
    text = (
        f"Arguments with gold mentions, {args.data}, read by a second encoder pass with the trigger marked (the "
        f"encoder of {checkpoint}, fine-tuned {args.epochs} epochs, seed {args.seed}): labelled F1 and "
        f"identification per epoch. Best dev epoch {best['epoch']}: test {best['test'][0]} "
        f"({best['test'][1]}). Gold arguments: {counts}; inputs (one per trigger): "
        f"{ {split: len(inputs[split]) for split in SPLITS} }; gold arguments past --max-length {args.max_length}, "
        f"so missed: {unread}.\n\n"
        f"{table}\n\nMachine: {machine()}\nCommand: {command_line('bench.argument_marked', argv)}"
    )
    print(text)
    write_result(
        "argument-marked",
        text,
        {
            "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
            "epochs": rows,
            "best": best,
            "unread": unread,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
