"""The benchmark's own measuring: entity F1 of raw-text spans, scored the same way for the pipeline and us."""

from __future__ import annotations

import pytest

from bench.inference import raw_text_f1
from corpora.reader import Sentence

GOLD = [Sentence(("زار", "محمد", "علي", "كابول؛", "أمس"), {"entities": ("O", "B-PERS", "I-PERS", "B-LOC", "O")})]
TEXTS = [" ".join(sentence.words) for sentence in GOLD]  # "زار محمد علي كابول؛ أمس"


def test_spans_that_cover_the_gold_words_score_one():
    spans = [[(4, 12, "PERS"), (13, 18, "LOC")]]  # "محمد علي", "كابول" without its "؛"
    assert raw_text_f1(GOLD, TEXTS, spans) == pytest.approx(1.0)
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "PERS"), (13, 19, "LOC")]]) == pytest.approx(1.0)  # with "؛"


def test_wrong_split_type_and_empty_spans_cost():
    split = [[(4, 8, "PERS"), (9, 12, "PERS"), (13, 18, "LOC")]]  # two persons where gold has one
    assert raw_text_f1(GOLD, TEXTS, split) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "ORG"), (13, 18, "LOC")]]) == pytest.approx(0.5)
    # an empty span (the pipeline's lone "▁" piece) tags no word: the location is missed
    assert raw_text_f1(GOLD, TEXTS, [[(4, 12, "PERS"), (13, 13, "LOC")]]) == pytest.approx(2 / 3)


def test_texts_must_be_the_gold_words_joined_by_spaces():
    with pytest.raises(ValueError, match="text 0 .* single spaces"):
        raw_text_f1(GOLD, ["زار  محمد علي كابول؛ أمس"], [[]])


# ---------------------------------------------------------------- timing rows interleaved, spans compared


def test_rows_take_turns_in_every_round_and_ratios_pair_passes_of_one_round():
    from bench.common import interleaved_passes, speed_ratios

    calls, clock = [], iter(range(1, 100))
    timers = {row: (lambda row=row: calls.append(row) or float(next(clock))) for row in ("a", "b", "c")}
    seconds = interleaved_passes(timers, 3)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert seconds == {"a": [1.0, 6.0, 7.0], "b": [2.0, 5.0, 8.0], "c": [3.0, 4.0, 9.0]}
    assert speed_ratios(seconds, "c", "a") == pytest.approx([1 / 3, 6 / 4, 7 / 9])


def test_a_span_is_put_down_to_the_space_the_pipeline_reads_or_to_its_words():
    from conftest import tiny_tokenizer

    from bench.inference import difference_causes
    from models.settings import TaggerSettings

    text = "زار محمد كابول؛ أمس"  # the Tagger's words: زار محمد كابول ؛ أمس
    tagger = [[(4, 8, "PERS"), (9, 14, "LOC")]]
    words = [[(0, 3), (4, 8), (9, 15), (16, 19)]]  # the pipeline keeps "؛" on كابول
    tokenizer = tiny_tokenizer(text.split())
    settings = TaggerSettings(
        layers={"entities": ("O", "B-LOC", "I-LOC")}, normalisation="basic", max_length=64, overlap=8
    )
    piped = [[(3, 8, "PERS"), (9, 15, "LOC")]]  # the space before محمد, and كابول؛
    [found] = difference_causes([text], tagger, piped, tokenizer, settings, pipeline="spans", words=words)
    assert found["causes"] == ["spaces", "words"] and found["cause"] == "spaces"
    assert found["only_row"] == [(3, 8, "PERS", " محمد"), (9, 15, "LOC", "كابول؛")]
    # the lone `▁` piece before محمد, a word of the pipeline's own whose offsets are the space, tagged alone
    with_lone_piece = [[(0, 3), (3, 4), (4, 8), (9, 15), (16, 19)]]
    [found] = difference_causes(
        [text], tagger, [[(3, 4, "LOC"), *tagger[0]]], tokenizer, settings, pipeline="spans", words=with_lone_piece
    )
    assert found["causes"] == ["words"] and found["only_row"] == [(3, 4, "LOC", " ")]
    # the same spans, from both sides: nothing to explain
    assert difference_causes([text], tagger, tagger, tokenizer, settings, pipeline="spans", words=words) == []
    # the Tagger computed two ways: only numerics
    [found] = difference_causes([text], tagger, [tagger[0][:1]], tokenizer, settings)
    assert found["causes"] == ["numerics"]


def test_the_inference_benchmark_runs_small(tiny_run, tiny_data_root, tmp_path, monkeypatch, capsys):
    """A smoke run: two interleaved passes of the pipeline on the export as written, on the export with the encoder's
    own tokenizer, and of the exact Tagger, on five sentences and one article."""
    import json

    import bench.common
    from bench.inference import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "anercorp-camellab").symlink_to(tiny_data_root / "anercorp-camellab")
    (data / "news").mkdir()
    (data / "news" / "a.txt").write_text(
        "أعلن محمد في دمشق، أن القوات استعادت دير الزور.\nوقال أحمد: إن بغداد...", encoding="utf-8"
    )
    monkeypatch.setenv("ARABIC_NEWS_DATA", str(data))
    monkeypatch.setattr(bench.common, "OUT", tmp_path / "bench")
    rows = "pipeline,pipeline-encoder-tokenizer,tagger-fp32"
    assert (
        main(
            [
                "--checkpoint",
                str(tiny_run / "model"),
                "--rows",
                rows,
                "--limit",
                "5",
                "--passes",
                "2",
                "--work",
                str(tmp_path / "work"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "the median of 2 timed passes per row" in printed and "Load average" in printed
    assert "The standalone export against the Tagger (tagger-fp32)" in printed
    saved = json.loads((tmp_path / "bench" / "inference.json").read_text(encoding="utf-8"))
    for part in ("sentences", "articles"):
        passes = {row: len(seconds) for row, seconds in saved["seconds"][part].items()}
        assert passes == dict.fromkeys(rows.split(","), 2)
    assert set(saved["differences_from_tagger"]) == {"pipeline", "pipeline-encoder-tokenizer"}
    assert len(saved["load_average"]) == 2
    # the export with the encoder's own tokenizer shares the exported weights
    assert (tmp_path / "work" / "pipeline-encoder-tokenizer" / "model.safetensors").is_symlink()


def test_the_inference_benchmark_explains_itself(capsys):
    from bench.inference import main

    with pytest.raises(SystemExit) as exit_code:
        main(["--help"])
    assert exit_code.value.code == 0
    assert "--passes" in capsys.readouterr().out
