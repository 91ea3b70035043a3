"""Tagger: raw text in, spans with character offsets out, for every layer of a checkpoint.

tagger = Tagger.load("runs/x/model")
doc = tagger("...")
doc.entities  # [Span(layer, label, start, end, text, score), ...]
doc.arguments  # [Argument(event, entity, role, score), ...] where the checkpoint has an argument head
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.arguments import ENTITY_LAYER, NO_ROLE, TRIGGER_LAYER, Mention, WordArgument, candidate_pairs, gap
from models.checkpoint import load_checkpoint
from models.decoding import allowed_transitions, viterbi_batch
from models.encoding import Window, WordEncoder, length_batches
from models.labels import chunks, types_of
from models.modeling import HIDDEN_KEY, pool_word_pieces
from models.names import DECODERS
from models.settings import TaggerSettings
from models.spans import Span, word_spans
from models.text import Word, split_sentences


@dataclass(frozen=True)
class Argument:
    """An entity taking part in an event: `event` is a span of the events layer, `entity` one of the entities."""

    event: Span
    entity: Span
    role: str  # Agent, Patient, Place (the checkpoint's roles)
    score: float  # probability of the role


@dataclass(frozen=True)
class Doc:
    text: str
    spans: tuple[Span, ...]
    arguments: tuple[Argument, ...] = ()  # empty for a checkpoint without an argument head

    def layer(self, name: str) -> list[Span]:
        return [span for span in self.spans if span.layer == name]

    def arguments_of(self, event: Span) -> list[Argument]:
        """The participants of one event span."""
        return [argument for argument in self.arguments if argument.event == event]

    @property
    def entities(self) -> list[Span]:
        return self.layer("entities")

    @property
    def events(self) -> list[Span]:
        return self.layer("events")


@dataclass(frozen=True)
class WordTags:
    """Predictions for one sentence of words: per layer, one tag and its probability per word."""

    tags: dict[str, list[str]]
    scores: dict[str, list[float]]
    arguments: tuple[WordArgument, ...] = field(default=())  # with their scores; () without an argument head


def _describe(value) -> str:
    """The type of a wrong argument, with a hint where the fix is obvious."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} (decode it first, e.g. data.decode('utf-8'))"
    return type(value).__name__


def _check_list_of_str(value, expected: str) -> None:
    """TypeError `expected, got ...` unless value is a list or tuple of str (a str itself is not one: it would
    be taken character by character)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{expected}, got {_describe(value)}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{expected}, got a {_describe(item)} among them")


def sentence_words(split: list[list[list[Word]]]) -> tuple[list[list[str]], list[int]]:
    """The words of every sentence of some split texts, and each sentence's text index: the document ids that let
    the sentences of one text, and only those, be read as each other's context (predict_words)."""
    words = [[word.text for word in sentence] for sentences in split for sentence in sentences]
    documents = [index for index, sentences in enumerate(split) for _ in sentences]
    return words, documents


class Tagger:
    def __init__(
        self,
        model,
        tokenizer,
        settings: TaggerSettings,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        decoding: str = "viterbi",
        provenance: dict | None = None,
    ):
        """provenance: how the checkpoint was made (models/checkpoint.py), kept for reports; predictions never
        read it."""
        if decoding not in DECODERS:
            raise ValueError(f"decoding must be one of {DECODERS}, got {decoding!r}")
        self.decoding = decoding
        self.model = model
        self.settings = settings
        self.provenance = provenance or {}
        self.device = torch.device(device)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        self.precision = "fp32"  # as loaded; with_precision changes it
        self.encoder = WordEncoder(
            tokenizer, settings.normalisation, settings.max_length, settings.overlap, settings.context
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._transitions = {layer: allowed_transitions(labels) for layer, labels in self.layers.items()}
        # scored in fp32 on every backend: a small MLP over pairs, applied after decoding (models/arguments.py)
        head = getattr(model, "argument_head", None)
        self.argument_head = copy.deepcopy(head).float().eval().to(self.device) if head is not None else None
        self.roles: list[str] = list(head.roles) if head is not None else []

    @property
    def layers(self) -> dict[str, tuple[str, ...]]:
        return self.settings.layers

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | None = None,
        batch_size: int = 32,
        decoding: str = "viterbi",
        precision: str = "auto",
    ) -> Tagger:
        """decoding: "viterbi" (well-formed IOB2, the default) or "argmax" (each word on its own).
        precision: "auto" (bf16 where the device computes it natively, else fp32), "fp32" (exact), "bf16", "int8"
        (models/precision.py)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, info = load_checkpoint(Path(path), device)
        return cls(model, tokenizer, info.settings, device, batch_size, decoding, info.provenance).with_precision(
            precision
        )

    @classmethod
    def load_onnx(
        cls, path: str | Path, onnx_file: str | Path | None = None, batch_size: int = 32, decoding: str = "viterbi"
    ) -> Tagger:
        """The same Tagger on onnxruntime (CPU); the graph defaults to path/model.onnx, written by
        `python -m train.export --checkpoint PATH --onnx PATH/model.onnx`."""
        from models.onnx_runtime import load_onnx_checkpoint  # onnxruntime is an optional extra

        model, tokenizer, info = load_onnx_checkpoint(Path(path), onnx_file)
        return cls(model, tokenizer, info.settings, "cpu", batch_size, decoding, info.provenance)

    def with_precision(self, precision: str) -> Tagger:
        """This tagger (changed in place) at "bf16" or "int8" ("auto": bf16 where native, else unchanged): faster,
        some predictions differ from fp32 (models/precision.py; `python -m bench.inference` measures each)."""
        from models.precision import reduced_precision, resolve_precision

        precision = resolve_precision(precision, self.device)
        if precision == self.precision == "fp32":
            return self
        if self.precision != "fp32" or not isinstance(self.model, torch.nn.Module):
            raise ValueError("reduced precision applies once, to an fp32 torch model (not to ONNX)")
        self.model = reduced_precision(self.model, precision, self.device)
        self.precision = precision
        return self

    def replica(self) -> Tagger:
        """This tagger for another thread to tag with at the same time: the same model and heads (shared, not
        copied), its own tokenizer, since a fast tokenizer called from two threads at once fails ("Already
        borrowed")."""
        twin = copy.copy(self)
        twin.encoder = copy.deepcopy(self.encoder)
        return twin

    def __call__(self, text: str) -> Doc:
        if not isinstance(text, str):
            hint = " (Tagger.tag takes a list of texts)" if isinstance(text, (list, tuple)) else ""
            raise TypeError(f"Tagger expects one text as a str, got {_describe(text)}{hint}")
        return self.tag([text])[0]

    def tag(self, texts: list[str]) -> list[Doc]:
        """Tag many texts; sentences of all texts are batched together."""
        _check_list_of_str(texts, "Tagger.tag expects a list of str (texts)")
        split = [split_sentences(text) for text in texts]
        predictions = iter(self.predict_words(*sentence_words(split)))
        docs = []
        for text, sentences in zip(texts, split):
            spans, arguments = [], []
            for sentence in sentences:
                predicted = next(predictions)
                by_words = self._spans(text, sentence, predicted)
                spans.extend(by_words.values())
                arguments.extend(
                    Argument(
                        by_words[(TRIGGER_LAYER, *argument.trigger)],
                        by_words[(ENTITY_LAYER, *argument.entity)],
                        argument.role,
                        argument.score,
                    )
                    for argument in predicted.arguments
                )
            docs.append(Doc(text, tuple(spans), tuple(arguments)))
        return docs

    def _spans(self, text: str, sentence: list[Word], predicted: WordTags) -> dict[tuple[str, int, int], Span]:
        """The sentence's spans, keyed by (layer, first word, end word)."""
        return {
            (layer, *words): span
            for layer, tags in predicted.tags.items()
            for words, span in word_spans(text, sentence, layer, tags, predicted.scores[layer]).items()
        }

    @torch.inference_mode()
    def predict_words(
        self,
        sentences: list[list[str]],
        documents: list | None = None,
        mentions: list[dict[str, list[Mention]]] | None = None,
    ) -> list[WordTags]:
        """One tag per word per layer for pre-split sentences (what the eval harness scores), and the arguments
        of a checkpoint with an argument head.

        documents: one id per sentence; neighbouring sentences with the same id are one text, read as each
        other's context by a checkpoint trained with `context`. None: each sentence alone.
        mentions: one {events: [(first, end, subtype)], entities: [(first, end, type)]} per sentence, the spans
        whose pairs get arguments instead of the predicted ones (eval with gold mentions: the linking alone)."""
        expected = "Tagger.predict_words expects a list of sentences, each a list of str (words)"
        if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)):
            raise TypeError(f"{expected}, got {_describe(sentences)}")
        for sentence in sentences:
            _check_list_of_str(sentence, expected)
        if documents is not None:
            wanted = f"Tagger.predict_words: documents must be a list of one id per sentence ({len(sentences)})"
            if not isinstance(documents, (list, tuple)):
                raise TypeError(f"{wanted}, got {_describe(documents)}")
            if len(documents) != len(sentences):
                raise ValueError(f"{wanted}, got {len(documents)} ids")
        if mentions is not None:
            self._check_mentions(mentions, sentences)
        offsets = np.cumsum([0] + [len(words) for words in sentences])
        log_probs = {
            layer: np.zeros((offsets[-1], len(labels)), dtype=np.float32) for layer, labels in self.layers.items()
        }
        # per word, the sum of its pieces' hidden states and their number: what argument spans are pooled from
        word_sums, word_counts = None, np.zeros(offsets[-1], dtype=np.float32)
        windows = [
            (index, window)
            for index, encoded in enumerate(self.encoder.encode(sentences, documents))
            for window in encoded
        ]
        # longest first, so each batch pads little and memory peaks early
        for members in length_batches([len(window.input_ids) for _, window in windows], self.batch_size):
            batch = [windows[member] for member in members]
            rows = [row for row, (_, window) in enumerate(batch) for _ in window.words]
            positions = [position for _, window in batch for position in window.positions]
            targets = [offsets[index] + word for index, window in batch for word in window.words]
            outputs = self.model(**self.collate([window for _, window in batch]))
            word_starts = (
                self._word_starts([window for _, window in batch]) if self.settings.word_pooling == "mean" else None
            )
            for layer in self.layers:
                # pooled here, after the model, so every backend (torch, bf16, int8, ONNX) pools the same way
                logits = outputs[layer] if word_starts is None else pool_word_pieces(outputs[layer], word_starts)
                picked = logits[rows, positions].float().log_softmax(-1)
                log_probs[layer][targets] = picked.cpu().numpy()
            if self.argument_head is not None:
                hidden = outputs[HIDDEN_KEY].float()
                starts = word_starts if word_starts is not None else self._word_starts([window for _, window in batch])
                sums = torch.zeros_like(hidden).scatter_add_(1, starts.unsqueeze(-1).expand_as(hidden), hidden)
                counts = torch.zeros(starts.shape, device=hidden.device).scatter_add_(
                    1, starts, torch.ones_like(hidden[..., 0])
                )
                if word_sums is None:
                    word_sums = np.zeros((offsets[-1], hidden.shape[-1]), dtype=np.float32)
                word_sums[targets] = sums[rows, positions].cpu().numpy()
                word_counts[targets] = counts[rows, positions].cpu().numpy()
        bounds = list(zip(offsets[:-1].tolist(), offsets[1:].tolist()))
        tags, scores = {}, {}
        for layer, labels in self.layers.items():
            # all sentences of a layer at once: per-sentence numpy calls cost more than the numbers
            chosen = self._decode(layer, log_probs[layer], bounds)
            layer_tags = [labels[label] for label in chosen.tolist()]
            layer_scores = np.exp(log_probs[layer][np.arange(len(chosen)), chosen]).tolist()
            tags[layer] = [layer_tags[begin:end] for begin, end in bounds]
            scores[layer] = [layer_scores[begin:end] for begin, end in bounds]
        if mentions is None and self.argument_head is not None:
            mentions = [
                {layer: chunks(tags[layer][index]) for layer in (TRIGGER_LAYER, ENTITY_LAYER)}
                for index in range(len(sentences))
            ]
        arguments = (
            self._arguments(mentions, offsets, word_sums, word_counts)
            if self.argument_head is not None
            else [()] * len(sentences)
        )
        return [
            WordTags(
                {layer: tags[layer][index] for layer in self.layers},
                {layer: scores[layer][index] for layer in self.layers},
                arguments[index],
            )
            for index in range(len(sentences))
        ]

    def _check_mentions(self, mentions, sentences: list[list[str]]) -> None:
        where = "Tagger.predict_words: mentions"
        if self.argument_head is None:
            raise ValueError(f"{where} are given, but the checkpoint has no argument head")
        if not isinstance(mentions, (list, tuple)) or len(mentions) != len(sentences):
            raise ValueError(f"{where} must be a list of one dict per sentence ({len(sentences)})")
        known_types = {layer: set(types_of(self.layers[layer])) for layer in (TRIGGER_LAYER, ENTITY_LAYER)}
        for index, (given, words) in enumerate(zip(mentions, sentences)):
            if not isinstance(given, dict):
                raise TypeError(f"{where}: sentence {index}: expected a dict of layer -> spans, got {_describe(given)}")
            for layer, known in known_types.items():
                for first, end, label in given.get(layer, ()):
                    if label not in known:
                        raise ValueError(
                            f"{where}: sentence {index}: {layer} label {label!r} is not one of the "
                            f"checkpoint's {sorted(known)}"
                        )
                    if not 0 <= first < end <= len(words):
                        raise ValueError(
                            f"{where}: sentence {index}: {layer} span [{first}, {end}) is not within its "
                            f"{len(words)} words"
                        )

    def _arguments(
        self,
        mentions: list[dict[str, list[Mention]]],
        offsets: np.ndarray,
        word_sums: np.ndarray | None,
        word_counts: np.ndarray,
    ) -> list[tuple[WordArgument, ...]]:
        """The arguments of every sentence: each (trigger, entity) pair of its mentions scored by the argument head
        from the two spans' pooled pieces (each word's pieces read in the window that predicts it, so a pair is
        scored however far apart its spans are)."""
        subtypes, entity_types = types_of(self.layers[TRIGGER_LAYER]), types_of(self.layers[ENTITY_LAYER])
        pairs = [
            (index, *pair)
            for index, given in enumerate(mentions)
            for pair in candidate_pairs(
                list(given.get(TRIGGER_LAYER, ())), list(given.get(ENTITY_LAYER, ())), subtypes, entity_types
            )
        ]
        found: list[list[WordArgument]] = [[] for _ in mentions]
        if not pairs:
            return [()] * len(mentions)

        def pooled(index: int, first: int, end: int) -> np.ndarray:
            begin, stop = offsets[index] + first, offsets[index] + end
            return word_sums[begin:stop].sum(0) / max(word_counts[begin:stop].sum(), 1.0)

        def stacked(spans) -> torch.Tensor:
            return torch.from_numpy(np.stack([pooled(index, first, end) for index, first, end in spans])).to(
                self.device
            )

        triggers = stacked((index, *trigger[:2]) for index, trigger, _, _ in pairs)
        entities = stacked((index, *entity[:2]) for index, _, entity, _ in pairs)
        between = stacked((index, *gap(*trigger[:2], *entity[:2])) for index, trigger, entity, _ in pairs)
        features = torch.tensor([ids for _, _, _, ids in pairs], dtype=torch.long, device=self.device)
        probabilities = self.argument_head.score(triggers, entities, between, features).float().softmax(-1).cpu()
        best, chosen = probabilities.max(-1)
        labels = [NO_ROLE, *self.roles]
        for (index, trigger, entity, _), label, score in zip(pairs, chosen.tolist(), best.tolist()):
            if label:
                found[index].append(WordArgument(trigger[:2], entity[:2], labels[label], round(score, 4)))
        return [tuple(arguments) for arguments in found]

    def _decode(self, layer: str, log_probs: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
        """Label ids of every word (sentences laid end to end, each [begin, end) in bounds)."""
        if self.decoding == "viterbi":
            paths = viterbi_batch([log_probs[begin:end] for begin, end in bounds], *self._transitions[layer])
            return np.fromiter((label for path in paths for label in path), dtype=np.int64, count=len(log_probs))
        return log_probs.argmax(-1)

    def _word_starts(self, windows: list[Window]) -> torch.Tensor:
        length = max(len(window.input_ids) for window in windows)
        starts = np.tile(np.arange(length), (len(windows), 1))  # padding maps to itself
        for row, window in enumerate(windows):
            starts[row, : len(window.word_starts)] = window.word_starts
        return torch.from_numpy(starts).to(self.device)

    def collate(self, windows: list[Window]) -> dict[str, torch.Tensor]:
        """A batch of windows as the model's inputs, padded to the longest, on the tagger's device."""
        lengths = np.array([len(window.input_ids) for window in windows])
        input_ids = np.full((len(windows), lengths.max()), self.pad_id, dtype=np.int64)
        for row, window in enumerate(windows):
            input_ids[row, : lengths[row]] = window.input_ids
        attention_mask = (np.arange(lengths.max()) < lengths[:, None]).astype(np.int64)
        input_ids, attention_mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
