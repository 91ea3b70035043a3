"""Corpus readers: CoNLL in, IOB2 sentences out; bad input is reported by file and line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from corpora.reader import DATA_ENV, CorpusError, Sentence, data_root, load_split, read_conll
from models.labels import chunks

ENTITIES = {"entities": 1}


def _write(tmp_path: Path, text: str, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- reading ---------------------------------------------------------------------------------------


def test_reads_tokens_and_tags_in_sentences(tmp_path):
    path = _write(tmp_path, "قال O\nمحمد B-PERS\nعلي I-PERS\n. O\n\nفي O\nدمشق B-LOC\n")
    assert read_conll(path, ENTITIES) == [
        Sentence(("قال", "محمد", "علي", "."), {"entities": ("O", "B-PERS", "I-PERS", "O")}, str(path)),
        Sentence(("في", "دمشق"), {"entities": ("O", "B-LOC")}, str(path)),
    ]


def test_tab_separated_several_blank_lines_no_trailing_newline(tmp_path):
    path = _write(tmp_path, "\n\nقال\tO\nمحمد\tB-PERS\n\n\n \t\n\nفي\tO\nدمشق\tB-LOC")
    sentences = read_conll(path, ENTITIES)
    assert [s.words for s in sentences] == [("قال", "محمد"), ("في", "دمشق")]
    assert [s.tags["entities"] for s in sentences] == [("O", "B-PERS"), ("O", "B-LOC")]


def test_crlf_and_bom_are_accepted(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeffمحمد B-PERS\r\nقال O\r\n\r\nدمشق B-LOC\r\n".encode("utf-8"))
    sentences = read_conll(path, ENTITIES)
    assert [s.words for s in sentences] == [("محمد", "قال"), ("دمشق",)]
    assert sentences[0].tags["entities"] == ("B-PERS", "O")


def test_empty_file_has_no_sentences(tmp_path):
    assert read_conll(_write(tmp_path, ""), ENTITIES) == []
    assert read_conll(_write(tmp_path, "\n\n\n", "blank.txt"), ENTITIES) == []


def test_iob1_is_normalised_to_iob2_and_the_repair_logged(tmp_path, caplog):
    # three chunk-initial I- tags: at sentence start, after O, and after another type
    path = _write(tmp_path, "محمد I-PERS\nفي O\nدمشق I-LOC\n\nالأمم I-ORG\nالمتحدة I-ORG\nبغداد I-LOC\n")
    with caplog.at_level(logging.INFO, logger="corpora.reader"):
        sentences = read_conll(path, ENTITIES)
    assert [s.tags["entities"] for s in sentences] == [
        ("B-PERS", "O", "B-LOC"),
        ("B-ORG", "I-ORG", "B-LOC"),
    ]
    messages = [record.getMessage() for record in caplog.records if record.name == "corpora.reader"]
    assert any("repaired 4 " in message and str(path) in message and "entities" in message for message in messages), (
        messages
    )


def test_iob2_input_logs_no_repair(tmp_path, caplog):
    path = _write(tmp_path, "محمد B-PERS\nعلي I-PERS\n")
    with caplog.at_level(logging.INFO, logger="corpora.reader"):
        read_conll(path, ENTITIES)
    assert not [record for record in caplog.records if "repaired" in record.getMessage()]


# --- errors carry file:line ------------------------------------------------------------------------


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = _write(tmp_path, "قال O\nمحمد B-PERS\n\nفي O extra\n")
    with pytest.raises(CorpusError) as info:
        read_conll(path, ENTITIES)
    assert str(info.value).startswith(f"{path}:4:")


def test_too_few_columns_for_the_layers_names_file_and_line(tmp_path):
    path = _write(tmp_path, "\nقال O\n")
    with pytest.raises(CorpusError) as info:
        read_conll(path, {"entities": 1, "events": 2})
    assert str(info.value).startswith(f"{path}:2:")


def test_unknown_tag_shape_names_file_and_line(tmp_path):
    path = _write(tmp_path, "قال O\n\nفي O\nمحمد B_PER\n")
    with pytest.raises(CorpusError) as info:
        read_conll(path, ENTITIES)
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    assert "B_PER" in message


def test_not_utf8_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    data = "قال O\n".encode()  # ق ا ل are two bytes each, then " O\n": 6 + 3 = 9 bytes
    path.write_bytes(data + "café O\n".encode("latin-1"))  # é is byte 9 + 3 = 12
    with pytest.raises(CorpusError) as info:
        read_conll(path, ENTITIES)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "byte 12" in message


def test_not_utf8_byte_offset_counts_the_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfab O\n\xff O\n")  # BOM (3) + "ab O\n" (5): the bad byte is at 8
    with pytest.raises(CorpusError, match="byte 8"):
        read_conll(path, ENTITIES)


def test_corpus_error_is_a_value_error():
    assert issubclass(CorpusError, ValueError)


# --- columns -> layers, type renames ---------------------------------------------------------------


def test_three_columns_give_two_layers(tmp_path):
    path = _write(tmp_path, "قتل O B-Life.Die\nمحمد B-PERS O\nفي O O\nحمص B-LOC O\n")
    [sentence] = read_conll(path, {"entities": 1, "events": 2})
    assert sentence.words == ("قتل", "محمد", "في", "حمص")
    assert sentence.tags == {
        "entities": ("O", "B-PERS", "O", "B-LOC"),
        "events": ("B-Life.Die", "O", "O", "O"),
    }


def test_a_layer_can_read_any_column(tmp_path):
    path = _write(tmp_path, "قتل O I-Conflict.Attack\nمحمد B-PERS O\n")
    [sentence] = read_conll(path, {"events": 2})
    assert sentence.tags == {"events": ("B-Conflict.Attack", "O")}  # only the layer asked for, IOB1 repaired


def test_types_map_renames_per_layer(tmp_path):
    path = _write(tmp_path, "محمد B-PER B-PER\nعلي I-PER I-PER\nفي O O\nدمشق B-LOC B-LOC\n")
    [sentence] = read_conll(path, {"entities": 1, "other": 2}, types={"entities": {"PER": "PERS"}})
    assert sentence.tags["entities"] == ("B-PERS", "I-PERS", "O", "B-LOC")
    assert sentence.tags["other"] == ("B-PER", "I-PER", "O", "B-LOC")  # other layers keep their types


def test_types_map_then_iob1_repair_sees_the_renamed_type(tmp_path):
    # B-PERS then I-PER: after the rename both are PERS, one chunk
    path = _write(tmp_path, "محمد B-PERS\nعلي I-PER\n")
    [sentence] = read_conll(path, ENTITIES, types={"entities": {"PER": "PERS"}})
    assert sentence.tags["entities"] == ("B-PERS", "I-PERS")


# --- data_root -------------------------------------------------------------------------------------


def test_the_config_wins_over_the_env_var(tmp_path, monkeypatch):
    from_env, from_config = tmp_path / "env", tmp_path / "config"
    from_env.mkdir()
    from_config.mkdir()
    monkeypatch.setenv(DATA_ENV, str(from_env))
    assert data_root(str(from_config)) == from_config
    assert data_root(None) == from_env


def test_config_used_without_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_root(str(tmp_path)) == tmp_path


def test_missing_env_folder_names_the_setting(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(DATA_ENV, str(missing))
    with pytest.raises(FileNotFoundError) as info:
        data_root(None)
    message = str(info.value)
    assert "ARABIC_NEWS_DATA" in message
    assert str(missing) in message


def test_missing_config_folder_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as info:
        data_root(str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "set by data_root" in message
    assert "ARABIC_NEWS_DATA" in message  # and says how to point it elsewhere


# --- load_split: the configured corpora ------------------------------------------------------------


def _tokens(sentences: list[Sentence]) -> int:
    return sum(len(sentence.words) for sentence in sentences)


def test_anercorp_sizes_and_carved_dev(real_root):
    train = load_split("anercorp:train", real_root)
    dev = load_split("anercorp:dev", real_root)
    test = load_split("anercorp:test", real_root)
    assert (len(train), len(dev)) == (3576, 397)  # dev: round(3973 * 0.1) = 397 sentences
    assert _tokens(train) + _tokens(dev) == 125_102
    assert (len(test), _tokens(test)) == (925, 25_008)
    full = read_conll(real_root / "anercorp-camellab" / "ANERCorp_CamelLab_train.txt", ENTITIES)
    assert len(full) == 3973
    assert train == full[:3576]
    assert dev == full[3576:]
    for sentence in train[:50] + dev[:50] + test[:50]:
        assert set(sentence.tags) == {"entities"}
        assert len(sentence.tags["entities"]) == len(sentence.words)


@pytest.mark.parametrize(
    "split, sentences, tokens, events",
    [("train", 1328, 36_050, 542), ("dev", 710, 19_519, 108), ("test", 605, 18_284, 251)],
)
def test_aqmar_events_feeds_both_layers_with_anercorp_types(real_root, split, sentences, tokens, events):
    """The counts of the data folder's README; AQMAR's PER and MIS read as the ANERcorp types, and no
    argument layer, so the argument loss is masked (None), not trained on as 'no argument'."""
    loaded = load_split(f"aqmar-events:{split}", real_root)
    assert (len(loaded), _tokens(loaded)) == (sentences, tokens)
    assert sum(len(chunks(list(sentence.tags["events"]))) for sentence in loaded) == events
    entity_types = {tag[2:] for sentence in loaded for tag in sentence.tags["entities"] if tag != "O"}
    assert entity_types == {"PERS", "LOC", "ORG", "MISC"}
    assert all(sentence.arguments is None for sentence in loaded)


def test_unknown_corpus_lists_known_ones(tmp_path):
    with pytest.raises(CorpusError) as info:
        load_split("nosuchcorpus:train", tmp_path)
    assert "anercorp" in str(info.value)


def test_unknown_split_lists_known_ones(tmp_path):
    with pytest.raises(CorpusError) as info:
        load_split("anercorp:validation", tmp_path)
    message = str(info.value)
    assert "validation" in message
    for known in ("train", "test", "dev"):
        assert known in message


def test_wojood_trains_through_config_alone():
    """21 nested types: the config's label set covers every outermost tag, no code knows the scheme."""
    from corpora.reader import PROJECT_ROOT
    from models.encoding import WordEncoder
    from models.labels import bio_labels
    from train.config import load_config
    from train.encoders import tiny_encoder
    from train.features import build_features

    try:
        root = data_root()
    except FileNotFoundError as err:
        pytest.skip(f"real corpora not available: {err}")
    config = load_config(PROJECT_ROOT / "configs" / "wojood.yaml")
    layers = {layer: bio_labels(types) for layer, types in config["layers"].items()}
    sentences = load_split("wojood:train", root)
    assert len(sentences) == 1114 and sum(len(s.words) for s in sentences) == 18887
    _, tokenizer = tiny_encoder({"vocab_size": 300}, [w for s in sentences[:50] for w in s.words])
    features, _ = build_features(sentences, WordEncoder(tokenizer, "basic", 128, 32), layers, "wojood:train")
    assert len(features) >= len(sentences)
    used = {tag for s in sentences for tag in s.tags["entities"]}
    assert "B-EVENT" in used and used <= set(layers["entities"])


def test_a_split_sliced_by_percent_is_its_first_sentences_in_file_order(tiny_data_root):
    full = load_split("anercorp:train", tiny_data_root)
    quarter = load_split("anercorp:train[:25%]", tiny_data_root)
    assert quarter == full[: round(len(full) * 0.25)]
    assert 0 < len(quarter) < len(full)
    assert load_split("anercorp:train[:100%]", tiny_data_root) == full


@pytest.mark.parametrize("name", ["anercorp:train[:0%]", "anercorp:train[:150%]"])
def test_a_percentage_outside_0_to_100_is_refused(tiny_data_root, name):
    with pytest.raises(CorpusError, match="percentage"):
        load_split(name, tiny_data_root)
