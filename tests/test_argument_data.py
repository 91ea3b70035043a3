"""Event arguments in the corpora: the .args.jsonl reader, its checks against the CoNLL spans (each error
names file:line), and how load_split attaches arguments to Sentences (None: not annotated; (): none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import corpora.reader
from corpora.reader import CorpusError, load_split, read_arguments, read_conll
from models.arguments import WordArgument

ROLES = ("Agent", "Patient", "Place")

LAYERS = {"entities": 1, "events": 2}
CONLL = """قتل O B-Life.Die
محمد B-PERS O
علي I-PERS O
في O O
حمص B-LOC O

وصل O B-Movement.Transport
الأمم B-ORG O
المتحدة I-ORG O
إلى O O
بغداد B-LOC O
و O O
اجتماع O B-Contact.Meet
جورج I-PERS O

أعلن O O
محمد B-PERS O
"""
# sentence 1's last entity is written IOB1 (I-PERS after O): the reader repairs it to a chunk of its own
KILLED = {"trigger": [0, 1], "trigger_text": "قتل", "entity": [1, 3], "entity_text": "محمد علي", "role": "Patient"}
KILLED_IN = {"trigger": [0, 1], "trigger_text": "قتل", "entity": [4, 5], "entity_text": "حمص", "role": "Place"}
MET = {"trigger": [6, 7], "trigger_text": "اجتماع", "entity": [7, 8], "entity_text": "جورج", "role": "Agent"}


def _line(sentence, arguments) -> str:
    return json.dumps({"sentence": sentence, "arguments": arguments}, ensure_ascii=False)


@pytest.fixture
def sentences(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CONLL, encoding="utf-8")
    return read_conll(path, LAYERS)


def _read(tmp_path, sentences, *lines: str, roles=ROLES):
    path = tmp_path / "corpus.args.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, (lambda: read_arguments(path, sentences, roles))


def _error(tmp_path, sentences, *lines: str, line: int) -> str:
    """The error message for a file of `lines`, checked to start with path:line."""
    path, read = _read(tmp_path, sentences, *lines)
    with pytest.raises(CorpusError) as info:
        read()
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    return message


# --- reading -----------------------------------------------------------------------------------------


def test_reads_listed_sentences_into_word_arguments(tmp_path, sentences):
    _, read = _read(tmp_path, sentences, _line(0, [KILLED, KILLED_IN]), "", _line(1, [MET]), _line(2, []))
    assert read() == {
        0: (WordArgument((0, 1), (1, 3), "Patient"), WordArgument((0, 1), (4, 5), "Place")),
        1: (WordArgument((6, 7), (7, 8), "Agent"),),  # a chunk made by the IOB1 repair
        2: (),
    }


def test_an_entity_may_take_several_roles_and_a_trigger_several_arguments_of_one_role(tmp_path, sentences):
    other_trigger = {
        "trigger": [0, 1],
        "trigger_text": "وصل",
        "entity": [4, 5],
        "entity_text": "بغداد",
        "role": "Place",
    }
    both_agents = [{**MET, "entity": [1, 3], "entity_text": "الأمم المتحدة"}, MET]
    _, read = _read(
        tmp_path,
        sentences,
        _line(1, [other_trigger, {**MET, "entity": [4, 5], "entity_text": "بغداد", "role": "Place"}]),
    )
    assert len(read()[1]) == 2
    _, read = _read(tmp_path, sentences, _line(1, both_agents))
    assert [argument.role for argument in read()[1]] == ["Agent", "Agent"]


# --- errors carry file:line ----------------------------------------------------------------------------


def test_malformed_json(tmp_path, sentences):
    assert "not JSON" in _error(tmp_path, sentences, _line(0, [KILLED]), '{"sentence": 1, "arguments": [', line=2)


@pytest.mark.parametrize(
    "record",
    [
        "[1, []]",
        '{"arguments": []}',
        '{"sentence": "1", "arguments": []}',
        '{"sentence": 1.0, "arguments": []}',
        '{"sentence": true, "arguments": []}',
        '{"sentence": 1}',
        '{"sentence": 1, "arguments": {}}',
    ],
)
def test_a_line_that_is_not_a_sentence_object(tmp_path, sentences, record):
    message = _error(tmp_path, sentences, record, line=1)
    assert "int `sentence`" in message and "list `arguments`" in message


@pytest.mark.parametrize("index", [3, -1])
def test_sentence_index_out_of_range(tmp_path, sentences, index):
    message = _error(tmp_path, sentences, _line(0, []), _line(index, []), line=2)
    assert f"sentence {index} out of range" in message and "3 sentences" in message


def test_a_sentence_listed_twice_names_both_lines(tmp_path, sentences):
    message = _error(tmp_path, sentences, _line(0, [KILLED]), _line(1, []), _line(0, [KILLED_IN]), line=3)
    assert "sentence 0 listed again" in message and "line 1" in message


@pytest.mark.parametrize("key", ["trigger", "trigger_text", "entity", "entity_text", "role"])
def test_an_argument_missing_a_key(tmp_path, sentences, key):
    argument = {k: v for k, v in KILLED.items() if k != key}
    message = _error(tmp_path, sentences, _line(2, []), _line(0, [KILLED_IN, argument]), line=2)
    assert "argument 1" in message and f"missing {key}" in message


def test_an_argument_that_is_not_an_object(tmp_path, sentences):
    assert "not an object" in _error(tmp_path, sentences, _line(0, [["قتل", "محمد"]]), line=1)


@pytest.mark.parametrize("key", ["trigger", "entity"])
@pytest.mark.parametrize(
    "span", [[1], [1, 2, 3], ["1", "2"], [1.0, 2.0], [True, 2], [2, 2], [3, 1], [-1, 1], [4, 6], 1]
)
def test_a_span_that_is_not_start_end(tmp_path, sentences, key, span):
    message = _error(tmp_path, sentences, _line(0, [{**KILLED, key: span}]), line=1)
    assert f"{key} {span!r} is not a span [start, end)" in message and "5 words" in message


@pytest.mark.parametrize(
    "span, tags",
    [
        ([1, 2], ["O"]),  # not a trigger
        ([0, 2], ["B-Life.Die", "O"]),  # a trigger and more
    ],
)
def test_a_trigger_that_is_not_a_trigger_span(tmp_path, sentences, span, tags):
    message = _error(tmp_path, sentences, _line(0, [{**KILLED, "trigger": span}]), line=1)
    assert f"trigger [{span[0]}, {span[1]}) is not a span of the 'events' column" in message
    assert str(tags) in message


@pytest.mark.parametrize(
    "sentence, span, tags",
    [
        (0, [1, 2], ["B-PERS"]),  # part of محمد علي
        (0, [2, 3], ["I-PERS"]),
        (0, [3, 4], ["O"]),
        (0, [1, 5], ["B-PERS", "I-PERS", "O", "B-LOC"]),
        (1, [4, 8], ["B-LOC", "O", "O", "B-PERS"]),
    ],
)
def test_an_entity_that_is_not_an_entity_span(tmp_path, sentences, sentence, span, tags):
    argument = {**(KILLED if sentence == 0 else MET), "entity": span}
    message = _error(tmp_path, sentences, _line(sentence, [argument]), line=1)
    assert f"entity [{span[0]}, {span[1]}) is not a span of the 'entities' column" in message
    assert str(tags) in message


def test_two_chunks_made_by_the_iob1_repair_are_not_one_span(tmp_path):
    path = tmp_path / "iob1.txt"
    path.write_text("قتل O B-Life.Die\nواليابان B-LOC O\nفارس I-PERS O\n", encoding="utf-8")
    sentences = read_conll(path, LAYERS)  # I-PERS after B-LOC: a chunk of its own
    argument = {
        "trigger": [0, 1],
        "trigger_text": "قتل",
        "entity": [1, 3],
        "entity_text": "واليابان فارس",
        "role": "Patient",
    }
    assert "['B-LOC', 'B-PERS']" in _error(tmp_path, sentences, _line(0, [argument]), line=1)


@pytest.mark.parametrize(
    "key, text, words",
    [
        ("trigger_text", "قتلى", "قتل"),
        ("entity_text", "محمد  علي", "محمد علي"),  # two spaces
        ("entity_text", "محمد", "محمد علي"),
    ],
)
def test_span_text_that_differs_from_the_words_shows_both(tmp_path, sentences, key, text, words):
    message = _error(tmp_path, sentences, _line(0, [{**KILLED, key: text}]), line=1)
    assert f"{key} {text!r}" in message and repr(words) in message


def test_an_unknown_role_lists_the_known_ones(tmp_path, sentences):
    message = _error(tmp_path, sentences, _line(0, [{**KILLED, "role": "Victim"}]), line=1)
    assert "'Victim'" in message and all(role in message for role in ROLES)


def test_roles_are_those_given(tmp_path, sentences):
    path, _ = _read(tmp_path, sentences, _line(0, [KILLED_IN]))
    with pytest.raises(CorpusError, match="unknown role 'Place'"):
        read_arguments(path, sentences, ("Agent", "Patient"))


def test_the_same_pair_twice_in_a_sentence(tmp_path, sentences):
    message = _error(tmp_path, sentences, _line(0, [KILLED, KILLED_IN, {**KILLED, "role": "Agent"}]), line=1)
    assert "argument 2" in message and "linked twice" in message


def test_line_numbers_count_blank_lines(tmp_path, sentences):
    _error(tmp_path, sentences, _line(0, []), "", _line(1, [{**MET, "role": "Victim"}]), line=3)


def test_masked_sentences_are_neither_checked_nor_returned(tmp_path, sentences):
    path, _ = _read(tmp_path, sentences, _line(0, [{**KILLED, "entity": [1, 2]}]), _line(1, [MET]))
    assert read_arguments(path, sentences, ROLES, frozenset({0})) == {1: (WordArgument((6, 7), (7, 8), "Agent"),)}


def test_a_missing_arguments_file_is_named(tmp_path, sentences):
    missing = tmp_path / "nowhere.args.jsonl"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        read_arguments(missing, sentences, ROLES)


# --- load_split: arguments per corpus ------------------------------------------------------------------


@pytest.fixture
def corpus_config(tmp_path, monkeypatch):
    """Points load_split at a corpora.yaml of one corpus `toy` under tmp_path/data; returns (write, data root)."""
    root = tmp_path / "data"
    (root / "toy").mkdir(parents=True)

    def write(spec: dict) -> None:
        config = tmp_path / "corpora.yaml"
        config.write_text(json.dumps({"toy": {"dir": "toy", **spec}}), encoding="utf-8")  # JSON is YAML
        monkeypatch.setattr(corpora.reader, "CORPORA_FILE", config)

    return write, root


TOY = {
    "files": {"train": "train.txt", "test": "test.txt"},
    "dev": {"from": "train", "last_fraction": 0.5},
    "layers": LAYERS,
    "arguments": {"files": {"train": "train.args.jsonl", "test": "test.args.jsonl"}, "roles": list(ROLES)},
}


def _toy_files(root: Path, train_lines: list[str], test_lines: list[str]) -> None:
    for split, lines in (("train", train_lines), ("test", test_lines)):
        (root / "toy" / f"{split}.txt").write_text(CONLL + "\n" + CONLL, encoding="utf-8")  # 6 sentences
        (root / "toy" / f"{split}.args.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_dev_carve_keeps_arguments_and_unlisted_sentences_have_none(corpus_config):
    write, root = corpus_config
    write(TOY)
    # sentences 0 and 4 (= 1 of the second copy) listed; the dev carve takes sentences 3-5
    _toy_files(root, [_line(0, [KILLED]), _line(4, [MET])], [])
    train, dev = load_split("toy:train", root), load_split("toy:dev", root)
    assert [s.arguments for s in train] == [(WordArgument((0, 1), (1, 3), "Patient"),), (), ()]
    assert [s.arguments for s in dev] == [(), (WordArgument((6, 7), (7, 8), "Agent"),), ()]
    assert [s.arguments for s in load_split("toy:test", root)] == [()] * 6  # an empty file: all annotated


def test_masked_sentences_give_none(corpus_config):
    write, root = corpus_config
    write({**TOY, "arguments": {**TOY["arguments"], "masked": {"test": [1]}}})
    _toy_files(root, [], [_line(0, [KILLED]), _line(1, [{**MET, "entity": [7, 9]}])])
    assert [s.arguments for s in load_split("toy:test", root)][:3] == [
        (WordArgument((0, 1), (1, 3), "Patient"),),
        None,
        (),
    ]


def test_errors_name_the_arguments_file_and_line(corpus_config):
    write, root = corpus_config
    write(TOY)
    _toy_files(root, [_line(0, [KILLED]), _line(1, [{**MET, "role": "Victim"}])], [])
    with pytest.raises(CorpusError, match=rf"^{root / 'toy' / 'train.args.jsonl'}:2: "):
        load_split("toy:dev", root)


@pytest.mark.parametrize("layers", [{"entities": 1}, {"events": 2}])
def test_arguments_need_both_layers(corpus_config, layers):
    write, root = corpus_config
    write({**TOY, "layers": layers})
    _toy_files(root, [], [])
    with pytest.raises(ValueError, match="declares an arguments file but its layers lack") as info:
        load_split("toy:train", root)
    assert "corpora.yaml" in str(info.value)


def test_a_declared_arguments_file_that_does_not_exist(corpus_config):
    write, root = corpus_config
    write(TOY)
    _toy_files(root, [], [])
    (root / "toy" / "test.args.jsonl").unlink()
    load_split("toy:train", root)
    with pytest.raises(FileNotFoundError, match=str(root / "toy" / "test.args.jsonl")):
        load_split("toy:test", root)


def test_every_split_needs_an_arguments_file(corpus_config):
    write, root = corpus_config
    write({**TOY, "arguments": {**TOY["arguments"], "files": {"train": "train.args.jsonl"}}})
    _toy_files(root, [], [])
    with pytest.raises(ValueError, match=r"no arguments file for split \['test'\]"):
        load_split("toy:train", root)


@pytest.mark.parametrize("name", ["anercorp:train", "anercorp:dev", "aqmar:test"])
def test_corpora_without_arguments_give_none(tiny_data_root, name):
    assert all(sentence.arguments is None for sentence in load_split(name, tiny_data_root))


# --- the synthetic corpus of tests/conftest.py -----------------------------------------------------------


def test_synthetic_corpus_has_arguments_in_every_split(tiny_data_root):
    for split in ("train", "dev", "test"):
        sentences = load_split(f"anercorp-events:{split}", tiny_data_root)
        arguments = [argument for sentence in sentences for argument in sentence.arguments]
        assert all(sentence.arguments is not None for sentence in sentences)
        assert {argument.role for argument in arguments} == set(ROLES), split


def test_synthetic_long_sentences_have_arguments_far_apart(tiny_data_root):
    sentences = load_split("anercorp-events:train", tiny_data_root) + load_split("anercorp-events:test", tiny_data_root)
    long = [sentence for sentence in sentences if len(sentence.words) >= 60]
    assert long and all(sentence.arguments for sentence in long)
    distances = [abs(a.entity[0] - a.trigger[0]) for sentence in long for a in sentence.arguments]
    assert max(distances) > 30


# --- the real files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "split, listed, n_arguments, roles",
    [
        ("train", 1516, 3526, {"Agent": 1444, "Patient": 756, "Place": 1326}),
        ("test", 305, 706, {"Agent": 274, "Patient": 169, "Place": 263}),
    ],
)
def test_real_arguments_files_load(real_root, split, listed, n_arguments, roles):
    folder = real_root / "anercorp-events"
    lines = (folder / f"{split}.args.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line)["arguments"] for line in lines]
    assert (len(records), sum(map(len, records))) == (listed, n_arguments)  # the data README's table
    assert {role: sum(a["role"] == role for r in records for a in r) for role in ROLES} == roles
    # all but the one masked test sentence (configs/corpora.yaml) check out against the CoNLL spans
    masked = frozenset({453} if split == "test" else ())
    found = read_arguments(folder / f"{split}.args.jsonl", read_conll(folder / f"{split}.txt", LAYERS), ROLES, masked)
    assert (len(found), sum(map(len, found.values()))) == ((listed, n_arguments) if split == "train" else (304, 702))


def test_real_splits_carry_arguments(real_root):
    train, dev, test = (load_split(f"anercorp-events:{split}", real_root) for split in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (3576, 397, 925)
    assert sum(len(s.arguments) for s in train) + sum(len(s.arguments) for s in dev) == 3526
    assert [i for i, s in enumerate(test) if s.arguments is None] == [453]
    assert sum(len(s.arguments or ()) for s in test) == 702
