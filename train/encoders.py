"""Pretrained encoders by name: a Hub id or local folder, the offline e5-small, or a tiny random BERT for tests."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from pathlib import Path

from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedModel, PreTrainedTokenizerFast

from models.errors import UserError

TINY_ENCODER = "tiny:bert"
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


_WHAT_TO_DO = (
    "Either download it where the Hub is reachable (`hf download {name} --local-dir DIR`) and "
    "set `encoder: DIR` in the config (or pass encoder=DIR on the command line), or train offline "
    "with configs/e5-small-offline.yaml (`make demo`)."
)


class EncoderUnavailable(UserError, RuntimeError):
    """An encoder that is neither a local transformers checkpoint nor reachable on the Hub."""


def _hub_reachable() -> bool:
    """A quick look before transformers spends a minute retrying a Hub that cannot answer."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def load_encoder(
    name: str, tiny: dict | None = None, words: list[str] = ()
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """The encoder and its fast tokenizer. `tiny` and `words` only shape the tiny:bert test encoder."""
    if name == TINY_ENCODER:
        return tiny_encoder(tiny or {}, words)
    source = name
    if name.startswith("offline:"):
        from train.offline_encoder import OFFLINE_ENCODER, ensure_offline_encoder

        if name != OFFLINE_ENCODER:
            raise EncoderUnavailable(
                f"unknown offline encoder {name!r}; the one offline encoder is {OFFLINE_ENCODER!r}"
            )
        source = str(ensure_offline_encoder())
    if not Path(source).exists() and not _hub_reachable():
        raise EncoderUnavailable(
            f"cannot load encoder {name!r}: it is not a local folder and the Hugging Face Hub "
            f"cannot be reached from here.\n{_WHAT_TO_DO.format(name=name)}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        # weights_only: a repository with only pytorch_model.bin (AraBERT's, older ones) is read by torch.load's
        # weights-only unpickler, which refuses anything but tensors; model.safetensors is preferred where present
        options = {"add_pooling_layer": False} if _is_bert(source) else {}
        encoder = AutoModel.from_pretrained(source, trust_remote_code=False, weights_only=True, **options)
    except pickle.UnpicklingError as err:
        raise EncoderUnavailable(
            f"cannot load encoder {name!r}: its pytorch_model.bin holds more than weights, and "
            f"only weights are read from it ({str(err).splitlines()[0]})"
        ) from err
    except (OSError, ValueError) as err:  # transformers raises both for missing or unreadable files
        hint = _folder_problem(Path(source)) if Path(source).exists() else _WHAT_TO_DO.format(name=name)
        raise EncoderUnavailable(f"cannot load encoder {name!r}: {err}\n{hint}") from err
    if not tokenizer.is_fast:
        raise EncoderUnavailable(f"encoder {name!r} has no fast tokenizer (tokenizer.json); word alignment needs one")
    return encoder, tokenizer


def _folder_problem(folder: Path) -> str:
    """Why transformers cannot load a local folder, as far as can be told."""
    problem = "The folder exists but is not a complete transformers checkpoint"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return problem + "."
    if isinstance(config, dict) and "model_type" not in config:
        # transformers 5 no longer guesses the type from the folder's name (bert-base-...), as 4.x did
        return problem + ': its config.json has no "model_type" ("bert" for a BERT checkpoint such as AraBERT).'
    return problem + "."


def _is_bert(source: str) -> bool:
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(source).model_type == "bert"
    except OSError:
        return False


def bert_wordpiece(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer trained on `texts`, set up as AraBERT's: BertNormalizer without lower-casing or
    accent stripping (either would fold the hamza letters), BertPreTokenizer, [CLS] x [SEP]. It stands in for
    AraBERT's vocabulary where the Hub cannot be reached (tests, the GPU check's AraBERT-shaped model)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(BERT_SPECIALS), continuing_subword_prefix="##", show_progress=False
    )
    backend.train_from_iterator(texts, trainer)
    cls, sep = (backend.token_to_id(token) for token in ("[CLS]", "[SEP]"))
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def write_bert_stand_in(folder: Path, texts: Iterable[str], shape: dict, weights: str = "model.safetensors"):
    """A folder with the files of a BERT repository on the Hub such as aubmindlab/bert-base-arabertv02, and no
    other: config.json, a WordPiece vocab.txt trained on `texts` (bert_wordpiece; [unusedN] pieces fill it up to
    shape["vocab_size"], as in BERT vocabularies) and no tokenizer.json, tokenizer_config.json as AraBERT's, and
    random weights of a BERT pre-training model (pooler and heads included, as a converted checkpoint has them)
    in `weights`: model.safetensors or pytorch_model.bin. Returns that model."""
    import torch
    from transformers import BertForPreTraining

    if weights not in ("model.safetensors", "pytorch_model.bin"):
        raise ValueError(f"weights must be model.safetensors or pytorch_model.bin, got {weights!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = shape["vocab_size"]
    learnt = bert_wordpiece(texts, vocab_size).get_vocab()
    pieces = sorted(learnt, key=learnt.get)
    pieces += [f"[unused{index}]" for index in range(vocab_size - len(pieces))]
    (folder / "vocab.txt").write_text("".join(f"{piece}\n" for piece in pieces), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "max_len": 512}) + "\n", encoding="utf-8"
    )
    hidden = shape["hidden_size"]
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
        architectures=["BertForMaskedLM"],
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertForPreTraining(config)
    if weights == "pytorch_model.bin":
        config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / weights)
    else:
        model.save_pretrained(folder)
    return model


def tiny_encoder(shape: dict, words: list[str]) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A randomly initialised small BERT with a WordPiece vocabulary built from `words`.

    The vocabulary is built by hand rather than by a tokenizers trainer so it is identical on
    every run: every character (alone and as a ##continuation), then the most frequent words.
    """
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    specials = list(BERT_SPECIALS)
    characters = sorted({character for word in words for character in word})
    vocab = specials + characters + [f"##{character}" for character in characters]
    room = max(0, shape.get("vocab_size", 800) - len(vocab))
    frequent = sorted(Counter(words).items(), key=lambda item: (-item[1], item[0]))
    vocab += [word for word, _ in frequent if len(word) > 1][:room]
    backend = Tokenizer(models.WordPiece({piece: index for index, piece in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    hidden = shape.get("hidden_size", 32)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=shape.get("layers", 2),
        num_attention_heads=shape.get("heads", 2),
        intermediate_size=hidden * 4,
        max_position_embeddings=512,
        pad_token_id=0,
    )
    return BertModel(config, add_pooling_layer=False), tokenizer
