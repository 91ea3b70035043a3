"""Tagger: raw text in, spans with character offsets out, for every layer of a checkpoint.

    tagger = Tagger.load("runs/x/model")
    doc = tagger("...")
    doc.entities  # [Span(layer, label, start, end, text, score), ...]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import load_checkpoint
from models.decoding import DECODERS, allowed_transitions, viterbi
from models.encoding import Window, WordEncoder
from models.labels import chunks
from models.text import Word, split_sentences


@dataclass(frozen=True)
class Span:
    layer: str
    label: str
    start: int  # character offsets into the raw text: text == raw[start:end]
    end: int
    text: str
    score: float  # mean probability of the predicted tags over the span's words


@dataclass(frozen=True)
class Doc:
    text: str
    spans: tuple[Span, ...]

    def layer(self, name: str) -> list[Span]:
        return [span for span in self.spans if span.layer == name]

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


class Tagger:
    def __init__(self, model, tokenizer, info: dict, device: str | torch.device = "cpu", batch_size: int = 32,
                 decoding: str | None = None):
        self.decoding = decoding or info.get("decoding", "viterbi")
        if self.decoding not in DECODERS:
            raise ValueError(f"decoding must be one of {DECODERS}, got {self.decoding!r}")
        self.model = model
        self.info = info
        self.layers: dict[str, list[str]] = info["layers"]
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.encoder = WordEncoder(tokenizer, info["normalisation"], info["max_length"], info["overlap"])
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._transitions = {layer: allowed_transitions(labels) for layer, labels in self.layers.items()}

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, batch_size: int = 32, decoding: str | None = None) -> "Tagger":
        """decoding: "viterbi" (well-formed IOB2, the default) or "argmax" (each word on its own)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, info = load_checkpoint(Path(path), device)
        return cls(model, tokenizer, info, device, batch_size, decoding)

    def __call__(self, text: str) -> Doc:
        return self.tag([text])[0]

    def tag(self, texts: list[str]) -> list[Doc]:
        """Tag many texts; sentences of all texts are batched together."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(f"Tagger.tag expects a list of str, got {type(texts).__name__}")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"expected str, got {type(text).__name__}")
        split = [split_sentences(text) for text in texts]
        flat = [sentence for sentences in split for sentence in sentences]
        predictions = iter(self.predict_words([[word.text for word in sentence] for sentence in flat]))
        docs = []
        for text, sentences in zip(texts, split):
            spans = []
            for sentence in sentences:
                spans.extend(self._spans(text, sentence, next(predictions)))
            docs.append(Doc(text, tuple(spans)))
        return docs

    def _spans(self, text: str, sentence: list[Word], predicted: WordTags) -> list[Span]:
        spans = []
        for layer, tags in predicted.tags.items():
            scores = predicted.scores[layer]
            for first, end, label in chunks(tags):
                start, stop = sentence[first].start, sentence[end - 1].end
                score = sum(scores[first:end]) / (end - first)
                spans.append(Span(layer, label, start, stop, text[start:stop], round(score, 4)))
        return spans

    @torch.inference_mode()
    def predict_words(self, sentences: list[list[str]]) -> list[WordTags]:
        """One tag per word per layer for pre-split sentences (what the eval harness scores)."""
        offsets = np.cumsum([0] + [len(words) for words in sentences])
        log_probs = {layer: np.zeros((offsets[-1], len(labels)), dtype=np.float32) for layer, labels in self.layers.items()}
        windows = [(index, window) for index, encoded in enumerate(self.encoder.encode(sentences)) for window in encoded]
        # longest first, so each batch pads little and memory peaks early
        windows.sort(key=lambda item: -len(item[1].input_ids))
        for begin in range(0, len(windows), self.batch_size):
            batch = windows[begin : begin + self.batch_size]
            rows = [row for row, (_, window) in enumerate(batch) for _ in window.words]
            positions = [position for _, window in batch for position in window.positions]
            targets = [offsets[index] + word for index, window in batch for word in window.words]
            outputs = self.model(**self._collate([window for _, window in batch]))
            for layer in self.layers:
                picked = outputs[layer][rows, positions].float().log_softmax(-1)
                log_probs[layer][targets] = picked.cpu().numpy()
        results = []
        for index in range(len(sentences)):
            tags, scores = {}, {}
            for layer, labels in self.layers.items():
                sentence_log_probs = log_probs[layer][offsets[index] : offsets[index + 1]]
                chosen = self._decode(layer, sentence_log_probs)
                tags[layer] = [labels[label] for label in chosen]
                scores[layer] = np.exp(sentence_log_probs[np.arange(len(chosen)), chosen]).tolist()
            results.append(WordTags(tags, scores))
        return results

    def _decode(self, layer: str, log_probs: np.ndarray) -> list[int]:
        if self.decoding == "viterbi":
            return viterbi(log_probs, *self._transitions[layer])
        return log_probs.argmax(-1).tolist()

    def _collate(self, windows: list[Window]) -> dict[str, torch.Tensor]:
        length = max(len(window.input_ids) for window in windows)
        input_ids = torch.full((len(windows), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(windows), length), dtype=torch.long)
        for row, window in enumerate(windows):
            input_ids[row, : len(window.input_ids)] = torch.tensor(window.input_ids)
            attention_mask[row, : len(window.input_ids)] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
