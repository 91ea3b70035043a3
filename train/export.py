"""Export one layer of a checkpoint as a standalone AutoModelForTokenClassification folder, or the whole
model (encoder + every head) as an ONNX graph.

    python -m train.export --checkpoint runs/x/model --layer entities --to exports/entities
    python -m train.export --checkpoint runs/x/model --onnx runs/x/model/model.onnx

The folder needs no code of ours: transformers.pipeline("token-classification", model=DIR,
aggregation_strategy=...) loads it (pipeline_aggregation says with which).
Its tokenizer.json is the checkpoint's, made to read raw text as the Tagger does (word_tokenizer_json): the
Tagger's words (models/text.py: punctuation split off, whitespace and invisible marks dropped), each
pre-tokenized by the encoder's own rules as if alone, after the Tagger's per-word normalisation, so that the
model gets the Tagger's pieces and the pipeline's character offsets start at words, not at the space before them.
The ONNX graph takes input_ids and attention_mask (batch x length, both dynamic) and gives one logits
tensor per layer, named by the layer; Tagger.load_onnx(checkpoint) runs it on onnxruntime. For a checkpoint
with roles it also gives the encoder's last hidden state (named HIDDEN_KEY), from which the Tagger scores
event arguments with the argument head outside the graph (models/onnx_runtime.py). The standalone folder
is a plain token classifier of one layer: it has no arguments.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path

from models.errors import reports_user_errors, user_path
from models.names import ONNX_FILE
from models.text import INVISIBLE_SEPARATORS, JOINERS, NUMBER_SEPARATORS, TASHKEEL, TATWEEL

# torch, transformers and the checkpoint code are imported in the functions that use them, so that `--help`
# answers without waiting for them

ONNX_OPSET = 18
# transformers.pipeline's aggregation_strategy closest to each word_pooling where the pipeline reads the Tagger's
# words: "average" averages the pieces' probabilities where the Tagger averages their logits, so a few words may differ
PIPELINE_AGGREGATION = {"first": "first", "mean": "average"}

# The Tagger's per-word normalisation (models/text.py) as tokenizers normalizers over the whole text; arabert_v02's
# cut of letter elongation (a back-reference) and its link and e-mail placeholders have no normalizer.
_BASIC_NORMALISATION = [
    {"type": "NFKC"},
    {"type": "Replace", "pattern": {"Regex": TASHKEEL.pattern}, "content": ""},
    {"type": "Replace", "pattern": {"String": TATWEEL}, "content": ""},
]
NORMALIZERS = {"none": [], "basic": _BASIC_NORMALISATION, "arabert_v02": _BASIC_NORMALISATION}


def pipeline_aggregation(checkpoint: Path) -> str:
    """The aggregation_strategy to load a standalone export of `checkpoint` with."""
    from models.checkpoint import TOKENIZER_FILE, read_info

    tokenizer = json.loads((Path(checkpoint) / TOKENIZER_FILE).read_text(encoding="utf-8"))
    return aggregation_for(read_info(checkpoint).settings.word_pooling, pipeline_reads_words(tokenizer))


def aggregation_for(word_pooling: str, reads_words: bool) -> str:
    """Where the pipeline cuts words at spaces only (reads_words False), a name written against punctuation is one
    word with it (`غزة.`): "average" mixes the punctuation's O into the name and often loses it, "first" keeps it
    (with the punctuation in its span). So "first" there, whatever the pooling."""
    return PIPELINE_AGGREGATION[word_pooling] if reads_words else "first"


def _character_class(member: Callable[[str], bool]) -> str:
    """The body of a regex character class holding every code point for which member(char) holds, as ranges."""
    ranges, start = [], None
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and not 0xD800 <= code <= 0xDFFF and member(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{code - 1:X}}}" if code - 1 > start else ""))
            start = None
    return "".join(ranges)


@functools.cache
def tagger_word_pattern() -> str:
    r"""models.text.split_words's regex in the syntax of the tokenizers library (Oniguruma), whose Unicode tables
    are newer than Python's (U+0897 is a mark there, unassigned here), so the classes are listed as ranges of
    Python's own tables: Python's \w is str.isalnum() or `_`, its \d
    str.isdecimal(), its \s str.isspace()."""
    word = _character_class(
        lambda char: char.isalnum() or char == "_" or char in JOINERS or unicodedata.category(char) in ("Mn", "Mc")
    )
    digit = _character_class(str.isdecimal)
    separator = _character_class(lambda char: char.isspace() or char in INVISIBLE_SEPARATORS)
    number_separator = "".join(f"\\x{{{ord(char):X}}}" for char in NUMBER_SEPARATORS)
    return f"(?:[{word}]|(?<=[{digit}])[{number_separator}](?=[{digit}]))+|[^{separator}]"


def _each_word_alone(pre_tokenizer: dict) -> dict:
    """The encoder's pre-tokenizer as the Tagger runs it: on each word as a text of its own. A Metaspace that marks
    only a text's first word (prepend_scheme "first") marks every word there, so it marks every word here."""
    if pre_tokenizer["type"] == "Sequence":
        return {**pre_tokenizer, "pretokenizers": [_each_word_alone(step) for step in pre_tokenizer["pretokenizers"]]}
    if pre_tokenizer["type"] == "Metaspace" and pre_tokenizer.get("prepend_scheme") == "first":
        return {**pre_tokenizer, "prepend_scheme": "always"}
    return pre_tokenizer


def word_tokenizer_json(tokenizer: dict, normalisation: str) -> dict:
    """A tokenizer.json that reads raw text as the Tagger does. The Tagger hands the tokenizer its words one by one
    (models/encoding.py, is_split_into_words), each normalised on its own; a pipeline hands it the whole text. So:
    the Tagger's normalisation first, as normalizers; then the Tagger's words, whitespace and invisible marks
    dropped, so no piece's offsets start at a space; then the encoder's own pre-tokenizer inside each word. The
    pieces are the Tagger's for every word that normalising does not empty or re-split.

    A Metaspace decoder (sentencepiece) drops the word-start mark of its first piece. The pipeline decodes each
    word's pieces, then a span's words by decoding them again, so with it a span's words run together ("قيسسعيد");
    this decoder keeps the mark as a space through the first decoding and drops one leading space, so a span reads
    "قيس سعيد" (and tokenizer.decode starts with a space)."""
    from models.checkpoint import CheckpointError

    if normalisation not in NORMALIZERS:
        raise CheckpointError(f"unknown normalisation {normalisation!r}; known: {sorted(NORMALIZERS)}")
    normalizers = NORMALIZERS[normalisation] + ([tokenizer["normalizer"]] if tokenizer.get("normalizer") else [])
    words = {"type": "Split", "pattern": {"Regex": tagger_word_pattern()}, "behavior": "Removed", "invert": True}
    pre_tokenizer = tokenizer.get("pre_tokenizer")
    inside_words = [_each_word_alone(pre_tokenizer)] if pre_tokenizer else []
    result = {
        **tokenizer,
        "normalizer": {"type": "Sequence", "normalizers": normalizers} if normalizers else None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [words, *inside_words]},
    }
    decoder = tokenizer.get("decoder") or {}
    if decoder.get("type") == "Metaspace":
        result["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
                {"type": "Replace", "pattern": {"String": decoder["replacement"]}, "content": " "},
            ],
        }
    return result


def pipeline_reads_words(tokenizer: dict) -> bool:
    """Whether transformers' token-classification pipeline groups pieces into words by the tokenizer's
    pre-tokenizer: only for a model with a continuing-subword prefix (WordPiece's `##`). For the others
    (sentencepiece) it starts a word only at a space, whatever the pre-tokenizer ("Tokenizer does not support real
    words, using fallback heuristic")."""
    return bool(tokenizer["model"].get("continuing_subword_prefix"))


def export_layer(checkpoint: Path, layer: str, out_dir: Path) -> Path:
    from tokenizers import Tokenizer
    from transformers import AutoModelForTokenClassification

    from eval.model_card import CARD_FILE
    from models.checkpoint import TOKENIZER_FILE, CheckpointError, load_checkpoint

    model, tokenizer, info = load_checkpoint(checkpoint)
    if layer not in model.layers:
        raise CheckpointError(f"{checkpoint} has no layer {layer!r}; it has {list(model.layers)}")
    labels = model.layers[layer]
    config = model.encoder.config
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    standalone = AutoModelForTokenClassification.from_config(config)
    missing, unexpected = standalone.base_model.load_state_dict(model.encoder.state_dict(), strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"encoder weights do not fit {type(standalone).__name__}: missing {missing}, unexpected {unexpected}"
        )
    classifier = getattr(standalone, "classifier", None)
    if classifier is None or classifier.weight.shape != model.heads[layer].weight.shape:
        raise CheckpointError(
            f"{type(standalone).__name__} has no linear `classifier` of shape "
            f"{tuple(model.heads[layer].weight.shape)} to take the {layer} head"
        )
    classifier.load_state_dict(model.heads[layer].state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    standalone.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tokenizer_file = out_dir / TOKENIZER_FILE
    word_tokenizer = word_tokenizer_json(
        json.loads(tokenizer_file.read_text(encoding="utf-8")), info.settings.normalisation
    )
    # through Tokenizer: a tokenizer.json that does not load fails here, not in the user's pipeline
    Tokenizer.from_str(json.dumps(word_tokenizer, ensure_ascii=False)).save(str(tokenizer_file))
    card = export_card(checkpoint, info, layer, out_dir, pipeline_reads_words(word_tokenizer))
    (out_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return out_dir


def export_card(checkpoint: Path, info, layer: str, out_dir: Path, reads_words: bool) -> str:
    """README.md of a standalone export: a token classifier that a plain pipeline loads, and how it differs from
    the Tagger."""
    from eval.model_card import front_matter
    from models.labels import types_of

    settings = info.settings
    aggregation = aggregation_for(settings.word_pooling, reads_words)
    name = info.provenance.get("run") or Path(checkpoint).resolve().parent.name
    if not reads_words:
        grouping = (
            "The pipeline groups pieces into words by its own rule, not by the tokenizer's (this encoder's "
            "tokenizer has no continuing-subword prefix): a new word only after a space, so punctuation "
            "written against a word is labelled with it (`غزة.`: `first` keeps the name, where `average` would "
            "often lose it to the punctuation), and a lone `▁` piece is a word of its own."
        )
    elif settings.normalisation != "none":
        grouping = (
            "The pipeline groups pieces into these words, except a word that normalising shortens (tashkeel, "
            "tatweel): transformers tells a word's first piece by its length matching the text's, so it reads "
            "such a word as part of the word before it."
        )
    else:
        grouping = "The pipeline groups pieces into these words."
    return "\n".join(
        [
            *front_matter([layer], pipeline_tag="token-classification"),
            "",
            f"# {name}: the `{layer}` layer as a token classifier",
            "",
            f"One layer of the Arabic news tagger checkpoint `{checkpoint}`, exported by `python -m train.export`: "
            "a plain transformers token classifier, no code of the tagger's repository needed.",
            "",
            "```python",
            "from transformers import pipeline",
            f'tagger = pipeline("token-classification", model="{out_dir}", aggregation_strategy="{aggregation}")',
            'print(tagger("أعلن التلفزيون الرسمي السوري أن القوات استعادت مدينة دير الزور."))',
            "```",
            "",
            f"Labels: {', '.join(types_of(settings.layers[layer]))} (IOB2).",
            "",
            "## What differs from the Tagger",
            "",
            f"The tokenizer cuts raw text into the Tagger's words (punctuation split off) and applies its "
            f"`{settings.normalisation}` normalisation, so the model reads the Tagger's pieces. {grouping}",
            "",
            f"- `{aggregation}` "
            + (
                "averages the pieces' probabilities where the Tagger averages their logits; "
                if aggregation == "average"
                else "labels a word by its first piece"
                + (", as the Tagger; " if settings.word_pooling == "first" else " (the Tagger averages its pieces); ")
            )
            + "each word takes its most probable label (the Tagger's default decoding picks the most probable "
            "well-formed IOB2 sequence).",
            f"- A text is read whole (pass `stride` for one longer than the encoder's positions); the Tagger reads "
            f"sentence by sentence in windows of {settings.max_length} pieces"
            + (f", each with {settings.context} pieces of the neighbouring sentences." if settings.context else "."),
            "- One layer, no event arguments: those need the Tagger."
            + (
                " The `arabert_v02` normalisation's cut of letter elongation is not applied."
                if settings.normalisation == "arabert_v02"
                else ""
            ),
            "",
        ]
    )


def export_onnx(checkpoint: Path, out_file: Path | None = None, opset: int = ONNX_OPSET) -> Path:
    """Write the encoder and all tagging heads as one ONNX graph (default: checkpoint/model.onnx, where
    Tagger.load_onnx looks), with the hidden state as an extra output for a checkpoint with roles; batch and
    sequence length are dynamic."""
    import torch

    from models.checkpoint import load_checkpoint
    from models.onnx_runtime import INPUT_NAMES, GraphOutputs

    model, tokenizer, _ = load_checkpoint(checkpoint)
    out_file = Path(out_file) if out_file is not None else Path(checkpoint) / ONNX_FILE
    # sdpa attention exports as a softmax guarded against NaN (Where, IsNaN: a tenth of onnxruntime's time);
    # eager attention computes the same thing as plain MatMul, Add, Softmax
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    wrapper = GraphOutputs(model).eval()
    # two rows of different lengths, so padding is traced too
    sample = tokenizer(["a b c d e f", "a"], padding=True, return_tensors="pt")
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # both inputs share their axes, so the exporter keeps one name per axis and says so: not a problem
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")  # inside torch.export
        torch.onnx.export(
            wrapper,
            (sample["input_ids"], sample["attention_mask"]),
            str(out_file),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=wrapper.output_names,
            opset_version=opset,
            dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}),
            external_data=False,
            verbose=False,
        )
    return out_file


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.export",
        description="Write one tagging layer of a checkpoint as a standalone transformers token-classification "
        "model (config with id2label, model.safetensors, tokenizer) loadable with no code of ours, or the "
        "whole model (encoder + every head) as an ONNX graph for onnxruntime. Event arguments need the "
        "Tagger: the ONNX graph serves them to Tagger.load_onnx, the standalone model has none.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint folder (runs/<name>/model)")
    parser.add_argument("--layer", default="entities", help="which layer to export (default: entities)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=Path, help="output folder of the standalone token-classification model")
    target.add_argument(
        "--onnx",
        type=Path,
        metavar="FILE",
        help=f"write the encoder and every head as one ONNX graph (opset {ONNX_OPSET}) to FILE "
        f"instead; put it at CHECKPOINT/{ONNX_FILE} for Tagger.load_onnx to find it",
    )
    args = parser.parse_args(argv)
    from eval.model_card import CARD_FILE
    from models.checkpoint import read_info

    with user_path(args.onnx or args.to):  # e.g. a file in the way of the folder, or no permission to write there
        if args.onnx is not None:
            out = export_onnx(args.checkpoint, args.onnx)
        else:
            out = export_layer(args.checkpoint, args.layer, args.to)
    roles = read_info(args.checkpoint).settings.roles
    if args.onnx is not None:
        hidden = " (and the hidden state the Tagger scores event arguments from)" if roles else ""
        print(f"exported all layers{hidden} to {out}")
    else:
        print(
            f'exported layer {args.layer} to {out}; load it with transformers.pipeline("token-classification", '
            f'model="{out}", aggregation_strategy="{pipeline_aggregation(args.checkpoint)}"); its {CARD_FILE} '
            "says where it differs from the Tagger"
        )
        if roles:
            print(
                f"it tags {args.layer} only: the checkpoint's event arguments ({', '.join(roles)}) are not in it; "
                f"they need the Tagger (Tagger.load, or Tagger.load_onnx with the --onnx graph)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
