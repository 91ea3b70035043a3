"""The argument head: pairs per window, loss masking, checkpoint round trip, the Tagger's arguments and eval."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from corpora.reader import Sentence, load_split
from eval.harness import evaluate, render
from models import Tagger
from models.arguments import ARGUMENT_KEY, N_DISTANCE_BUCKETS, NO_ROLE, PAIR_COLUMNS, WordArgument, distance_bucket
from models.checkpoint import HEADS_FILE, CheckpointError, load_checkpoint
from models.encoding import WordEncoder
from models.labels import bio_labels, chunks
from models.modeling import IGNORE, PAIRS_KEY, MultiHeadTagger, label_key
from train.config import ConfigError, load_config
from train.encoders import tiny_encoder
from train.features import Collator, PairStats, build_features, window_pairs

EVENT_TYPES = ["Conflict.Attack", "Life.Die", "Movement.Transport", "Contact.Meet"]
ROLES = ["Agent", "Patient", "Place"]
TINY = Path(__file__).parents[1] / "configs" / "tiny.yaml"
LAYERS = {"entities": bio_labels(["PERS", "LOC", "ORG", "MISC"]), "events": bio_labels(EVENT_TYPES)}


def argument_config(root: Path, out: Path, *extra: str) -> dict:
    return load_config(
        TINY,
        [
            f"data_root={root}",
            f"output_dir={out}",
            "name=arguments",
            "training.epochs=3",
            "word_pooling=mean",
            f"layers.events={json.dumps(EVENT_TYPES)}",
            f"roles={json.dumps(ROLES)}",
            "data.train=[anercorp-events:train, aqmar:train]",
            "data.dev=anercorp-events:dev",
            "data.test=anercorp-events:test",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def argument_run(tiny_data_root, tmp_path_factory) -> Path:
    from train.run import run

    out = tmp_path_factory.mktemp("arguments")
    saved = os.environ.pop("ARABIC_NEWS_DATA", None)
    try:
        run(argument_config(tiny_data_root, out))
    finally:
        if saved is not None:
            os.environ["ARABIC_NEWS_DATA"] = saved
    return out / "arguments" / "model"


def always(tagger: Tagger, role: str) -> Tagger:
    """The tagger with an argument head that gives every pair `role`: mechanics tests need arguments to exist."""
    out = tagger.argument_head.out
    with torch.no_grad():
        out.weight.zero_()
        out.bias.fill_(-10.0)
        out.bias[[NO_ROLE, *tagger.roles].index(role)] = 10.0
    return tagger


def test_distance_buckets_are_signed_and_in_range():
    assert distance_bucket(5, 5) == N_DISTANCE_BUCKETS // 2
    assert distance_bucket(5, 6) == N_DISTANCE_BUCKETS // 2 + 1
    assert distance_bucket(6, 5) == N_DISTANCE_BUCKETS // 2 - 1
    assert distance_bucket(0, 500) == N_DISTANCE_BUCKETS - 1
    assert distance_bucket(500, 0) == 0
    assert distance_bucket(0, 10) == distance_bucket(0, 12) != distance_bucket(0, 20)


def long_sentence() -> Sentence:
    """60 words: an attack at word 2 with an Agent right after and a Place at the far end (other windows)."""
    words = ["أمس", "،", "هجوم", "محمد"] + ["في"] * 54 + ["دمشق", "."]
    entities = ["O", "O", "O", "B-PERS"] + ["O"] * 54 + ["B-LOC", "O"]
    events = ["O", "O", "B-Conflict.Attack"] + ["O"] * 57
    arguments = (WordArgument((2, 3), (3, 4), "Agent"), WordArgument((2, 3), (58, 59), "Place"))
    return Sentence(tuple(words), {"entities": tuple(entities), "events": tuple(events)}, None, arguments)


def encoder_for(sentences: list[Sentence], max_length: int) -> WordEncoder:
    _, tokenizer = tiny_encoder({"vocab_size": 200}, [word for sentence in sentences for word in sentence.words])
    return WordEncoder(tokenizer, "basic", max_length, 4)


def test_each_pair_goes_to_exactly_one_window_that_reads_it_whole():
    sentence = long_sentence()
    encoder = encoder_for([sentence], 16)
    windows = encoder.encode([list(sentence.words)])[0]
    assert len(windows) > 2
    stats = PairStats()
    per_window = window_pairs(sentence, windows, LAYERS, ROLES, stats)
    rows = [(index, row, role) for index, (rows, roles) in enumerate(per_window) for row, role in zip(rows, roles)]
    # two pairs: (attack, محمد) neighbours, read by a window; (attack, دمشق) 56 words apart, read by none
    assert stats.pairs == 2 and stats.arguments == 2 and stats.unread == 1 and stats.unread_arguments == 1
    assert len(rows) == 1
    index, row, role = rows[0]
    assert role == 1 + ROLES.index("Agent")
    window = windows[index]
    assert 2 in window.words, "the pair is trained in the window that predicts its trigger"
    assert row[:4] == [
        window.word_bounds[2 - window.first_word],
        window.word_bounds[3 - window.first_word],
        window.word_bounds[3 - window.first_word],
        window.word_bounds[4 - window.first_word],
    ]
    # one window holds everything: every pair once, in that window
    wide = encoder_for([sentence], 128).encode([list(sentence.words)])[0]
    assert len(wide) == 1
    stats = PairStats()
    rows, roles = window_pairs(sentence, wide, LAYERS, ROLES, stats)[0]
    assert stats.unread == 0 and len(rows) == 2 and sorted(roles) == [1, 3]


def test_sentences_without_arguments_carry_no_pairs_and_no_argument_loss():
    annotated, unknown = long_sentence(), Sentence(long_sentence().words, long_sentence().tags, None, None)
    encoder = encoder_for([annotated], 128)
    features, _ = build_features([annotated, unknown], encoder, LAYERS, roles=ROLES)
    assert len(features[0][PAIRS_KEY]) == 2 and features[1][PAIRS_KEY] == []
    batch = Collator(0)(features)
    assert batch[PAIRS_KEY].shape == (2, 2, len(PAIR_COLUMNS))
    assert batch[label_key(ARGUMENT_KEY)][1].tolist() == [IGNORE, IGNORE]
    # the loss of a batch whose pairs are all unannotated equals the loss of the model without the head
    torch.manual_seed(0)
    encoder_model, _ = tiny_encoder({"vocab_size": 200}, list(annotated.words))
    model = MultiHeadTagger(encoder_model, LAYERS, roles=ROLES).eval()
    inputs = Collator(0)(features[1:])
    labels = {key: value for key, value in inputs.items() if key.startswith("labels_")}
    with_head = model(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        argument_pairs=inputs[PAIRS_KEY],
        **labels,
    )["loss"]
    layers_only = {key: value for key, value in labels.items() if key != label_key(ARGUMENT_KEY)}
    without = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], **layers_only)["loss"]
    assert torch.allclose(with_head, without)
    annotated_inputs = Collator(0)(features[:1])
    annotated_labels = {key: value for key, value in annotated_inputs.items() if key.startswith("labels_")}
    more = model(
        input_ids=annotated_inputs["input_ids"],
        attention_mask=annotated_inputs["attention_mask"],
        argument_pairs=annotated_inputs[PAIRS_KEY],
        **annotated_labels,
    )["loss"]
    fewer = model(
        input_ids=annotated_inputs["input_ids"],
        attention_mask=annotated_inputs["attention_mask"],
        **{k: v for k, v in annotated_labels.items() if k != label_key(ARGUMENT_KEY)},
    )["loss"]
    assert more > fewer, "annotated pairs add their loss"


def test_a_corpus_role_the_config_lacks_is_refused():
    sentence = long_sentence()
    with pytest.raises(ValueError, match=r"roles \['Place'\] are not in the config's roles \['Agent', 'Patient'\]"):
        build_features([sentence], encoder_for([sentence], 128), LAYERS, "toy:train", roles=["Agent", "Patient"])


def test_roles_need_both_layers_and_distinct_names(tmp_path):
    with pytest.raises(ConfigError, match="roles link events to entities"):
        load_config(TINY, [f"roles={json.dumps(ROLES)}"])
    with pytest.raises(ConfigError, match="distinct role names"):
        load_config(TINY, [f"layers.events={json.dumps(EVENT_TYPES)}", "roles=[Agent, Agent]"])
    with pytest.raises(ConfigError, match="distinct role names"):
        load_config(TINY, [f"layers.events={json.dumps(EVENT_TYPES)}", "roles=[none]"])


@pytest.mark.slow
def test_training_scores_the_same_pairs_as_the_tagger(argument_run, tiny_data_root):
    """The pooled spans of a training window and of the Tagger's per-word sums give the same role logits."""
    model, tokenizer, info = load_checkpoint(argument_run)
    tagger = Tagger(model, tokenizer, info.settings)
    sentences = [s for s in load_split("anercorp-events:test", tiny_data_root) if s.arguments]
    short = [s for s in sentences if len(tagger.encoder.encode([list(s.words)])[0]) == 1][:5]
    assert short
    features, _ = build_features(short, tagger.encoder, tagger.layers, "test", "mean", tagger.roles)
    batch = Collator(tokenizer.pad_token_id)(features)
    with torch.no_grad():
        trained = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            word_starts=batch["word_starts"],
            argument_pairs=batch[PAIRS_KEY],
        )[ARGUMENT_KEY]
    gold = [{layer: chunks(list(s.tags[layer])) for layer in ("events", "entities")} for s in short]
    predicted = tagger.predict_words([list(s.words) for s in short], mentions=gold)
    for row, words in enumerate(predicted):
        found = {(a.trigger, a.entity): a.role for a in words.arguments}
        pairs = [(t, e) for t in gold[row]["events"] for e in gold[row]["entities"]]
        roles = [NO_ROLE, *tagger.roles]
        chosen = trained[row, : len(pairs)].argmax(-1).tolist()
        assert {(t[:2], e[:2]): roles[label] for (t, e), label in zip(pairs, chosen) if label} == found


@pytest.mark.slow
def test_the_tagger_takes_its_roles_from_the_head(argument_run):
    """The argument head's outputs are its roles, in its order: the Tagger reads them off the head it runs."""
    model, tokenizer, info = load_checkpoint(argument_run)
    tagger = always(Tagger(model, tokenizer, dataclasses.replace(info.settings, roles=())), "Place")
    (predicted,) = tagger.predict_words(
        [["هجوم", "دمشق"]], mentions=[{"events": [(0, 1, "Conflict.Attack")], "entities": [(1, 2, "LOC")]}]
    )
    assert tagger.roles == ROLES and [a.role for a in predicted.arguments] == ["Place"]


@pytest.mark.slow
def test_checkpoint_keeps_the_head_and_refuses_one_without_it(argument_run, tmp_path):
    model, _, info = load_checkpoint(argument_run)
    assert list(info.settings.roles) == ROLES and model.roles == ROLES
    assert model.argument_head is not None
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "model"
    shutil.copytree(argument_run, broken)
    heads = {
        key: value for key, value in load_file(str(broken / HEADS_FILE)).items() if not key.startswith("arguments.")
    }
    save_file(heads, str(broken / HEADS_FILE))
    meta = json.loads((broken / "tagger.json").read_text())
    meta.pop("sha256")
    (broken / "tagger.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="argument head does not fit"):
        load_checkpoint(broken)


def every_word(tagger: Tagger, layer: str, label: str) -> Tagger:
    """The tagger with `layer` tagging every word as its own `label` span."""
    head = tagger.model.heads[layer]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[tagger.layers[layer].index(label)] = 10.0
    return tagger


@pytest.mark.slow
def test_arguments_slice_the_raw_text_and_refer_to_the_docs_spans(argument_run):
    tagger = always(Tagger.load(argument_run, precision="fp32"), "Agent")
    every_word(every_word(tagger, "events", "B-Life.Die"), "entities", "B-ORG")
    text = "  هجوم محمد علي في دمشق ، وقتل بشار الأسد .\nوصل جورج بوش إلى القاهرة"
    doc = tagger(text)
    events, entities = doc.events, doc.entities
    n_words = len(events)
    assert n_words == len(entities) == 15  # nine words and a full stop, then five
    assert len(doc.arguments) == 10 * 10 + 5 * 5, "a head biased to Agent links every pair of each sentence"
    assert len(doc.arguments) == len({(a.event, a.entity) for a in doc.arguments})
    for argument in doc.arguments:
        assert argument.event in events and argument.entity in entities
        for span in (argument.event, argument.entity):
            assert text[span.start : span.end] == span.text
        assert argument.role == "Agent" and 0.99 < argument.score <= 1.0
        assert argument in doc.arguments_of(argument.event)
    # pairs never cross sentences
    sentence_of = lambda span: text.count("\n", 0, span.start)  # noqa: E731
    assert all(sentence_of(a.event) == sentence_of(a.entity) for a in doc.arguments)


@pytest.mark.slow
def test_no_entity_or_no_trigger_means_no_arguments(argument_run):
    tagger = always(Tagger.load(argument_run, precision="fp32"), "Place")
    words = [["هجوم", "في", "على"], ["محمد", "في", "دمشق"], []]
    mentions = [{"events": [(0, 1, "Conflict.Attack")]}, {"entities": [(0, 1, "PERS"), (2, 3, "LOC")]}, {}]
    assert [w.arguments for w in tagger.predict_words(words, mentions=mentions)] == [(), (), ()]
    assert tagger("").arguments == ()


@pytest.mark.slow
def test_a_pair_across_windows_is_scored_at_inference(argument_run):
    tagger = always(Tagger.load(argument_run, precision="fp32"), "Patient")
    sentence = long_sentence()
    assert len(tagger.encoder.encode([list(sentence.words)])[0]) > 1
    mentions = [{layer: chunks(list(sentence.tags[layer])) for layer in ("events", "entities")}]
    (predicted,) = tagger.predict_words([list(sentence.words)], mentions=mentions)
    assert {(a.trigger, a.entity) for a in predicted.arguments} == {((2, 3), (3, 4)), ((2, 3), (58, 59))}


@pytest.mark.slow
def test_bad_mentions_are_refused(argument_run):
    tagger = Tagger.load(argument_run, precision="fp32")
    with pytest.raises(ValueError, match="not one of the checkpoint's"):
        tagger.predict_words([["هجوم"]], mentions=[{"events": [(0, 1, "Justice.Sue")]}])
    with pytest.raises(ValueError, match="not within its 1 words"):
        tagger.predict_words([["هجوم"]], mentions=[{"events": [(0, 2, "Conflict.Attack")]}])
    with pytest.raises(ValueError, match="one dict per sentence"):
        tagger.predict_words([["هجوم"]], mentions=[])


@pytest.mark.slow
def test_eval_reports_arguments_both_ways_beside_the_rule_baseline(argument_run, tiny_data_root):
    tagger = Tagger.load(argument_run, precision="fp32")
    sentences = load_split("anercorp-events:test", tiny_data_root)
    report = evaluate(tagger, sentences, "anercorp-events:test")
    arguments = report["arguments"]
    n_gold = sum(len(s.arguments) for s in sentences if s.arguments is not None)
    for view in ("gold_mentions", "end_to_end"):
        assert arguments[view]["labelled"]["n_gold"] == n_gold
        assert arguments["rule_baseline"][view]["labelled"]["n_gold"] == n_gold
        assert 0 <= arguments[view]["labelled"]["f1"] <= arguments[view]["identification"]["f1"] <= 1
    assert arguments["events_fully_right"]["gold_mentions"]["events"] == sum(
        len(chunks(list(s.tags["events"]))) for s in sentences if s.arguments is not None
    )
    text = render(report)
    assert "arguments, gold triggers and entities given" in text and "rule baseline" in text


@pytest.mark.slow
def test_the_argument_benchmark_times_both_rows_interleaved(
    argument_run, tiny_data_root, tmp_path, monkeypatch, capsys
):
    import bench.common
    from bench.arguments import main

    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tiny_data_root))
    monkeypatch.setattr(bench.common, "OUT", tmp_path)
    assert main(["--checkpoint", str(argument_run), "--passes", "2", "--precision", "fp32"]) == 0
    table = capsys.readouterr().out
    assert "| sentences |" in table and "2 interleaved pairs of passes" in table
    saved = json.loads((tmp_path / "arguments.json").read_text())
    timed = saved["results"]["sentences"]["seconds"]
    assert (
        len(timed["with arguments"]) == len(timed["without"]) == 2 and len(saved["results"]["sentences"]["ratios"]) == 2
    )


@pytest.mark.slow
def test_the_refit_benchmark_reads_the_features_the_tagger_scores(argument_run, tiny_data_root, tmp_path, monkeypatch):
    """bench.argument_refit pools the frozen word vectors itself; with the checkpoint's head it must link exactly
    as the Tagger does with gold mentions, or its refitted rows would compare against the wrong baseline."""
    from bench.argument_refit import build_linker, frozen_features, main, predicted

    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tiny_data_root))
    tagger = Tagger.load(argument_run, precision="fp32")
    sentences = [s for s in load_split("anercorp-events:test", tiny_data_root) if s.arguments is not None]
    gold_mentions = [{layer: chunks(list(s.tags[layer])) for layer in ("events", "entities")} for s in sentences]
    linked = tagger.predict_words([list(s.words) for s in sentences], mentions=gold_mentions)
    own = build_linker(tagger, 0, dropout=0.1)
    own.head.load_state_dict(tagger.argument_head.state_dict())
    features = frozen_features(tagger, sentences)
    found = predicted(own, features, list(tagger.roles))
    expected = [tuple(sorted(tags.arguments)) for tags in linked]
    # informative only if the head links some pairs and not all of them
    assert 0 < sum(map(len, expected)) < sum(len(sentence.pairs) for sentence in features)
    assert [tuple(sorted(arguments)) for arguments in found] == expected
    # --encoder-layer: the last layer asked for by number is what the head reads; an earlier one is not
    depth = tagger.model.encoder.config.num_hidden_layers
    last, first = (frozen_features(tagger, sentences, layer) for layer in (depth, 1))
    assert all(torch.allclose(a.vectors, b.vectors, atol=1e-5) for a, b in zip(features, last))
    assert not torch.allclose(features[0].vectors, first[0].vectors, atol=1e-3)
    assert frozen_features(tagger, sentences)[0].vectors.equal(features[0].vectors)  # the hooks are gone
    assert (
        main(["--checkpoint", str(argument_run), "--epochs", "1", "--context", "0", "1", "--out", str(tmp_path)]) == 0
    )
    saved = json.loads((tmp_path / "argument-refit.json").read_text(encoding="utf-8"))
    assert {"checkpoint", "refitted head, 0 context layers", "refitted head, 1 context layer"} <= saved.keys()


@pytest.mark.slow
def test_the_refit_benchmark_reads_attention_between_the_pairs_spans(
    argument_run, tiny_data_root, tmp_path, monkeypatch
):
    """--attention: per pair, per layer and head, the share of attention the trigger's pieces pay to the entity's
    and back; a pair whose spans no window holds whole is counted, not guessed."""
    from bench.argument_refit import attention_features, frozen_features, main

    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tiny_data_root))
    tagger = Tagger.load(argument_run, precision="fp32")
    sentences = [s for s in load_split("anercorp-events:test", tiny_data_root) if s.arguments is not None]
    features = frozen_features(tagger, sentences)
    implementation = tagger.model.encoder.config._attn_implementation
    unread = attention_features(tagger, sentences, features)
    assert tagger.model.encoder.config._attn_implementation == implementation  # put back
    config = tagger.model.encoder.config
    windows = tagger.encoder.encode([list(s.words) for s in sentences])
    expected_unread = 0
    for sentence, sentence_windows in zip(features, windows):
        if not sentence.pairs:
            assert sentence.attention is None
            continue
        assert sentence.attention.shape == (
            len(sentence.pairs),
            2 * config.num_hidden_layers * config.num_attention_heads,
        )
        share = sentence.attention.exp() - 1e-4  # attention the trigger's pieces pay to the entity's: a share
        assert bool(((share > -1e-6) & (share < 1 + 1e-6)).all())
        for (trigger, entity, _), row in zip(sentence.pairs, sentence.attention):
            first, end = min(trigger[0], entity[0]), max(trigger[1], entity[1])
            held = any(w.first_word <= first and end < w.first_word + len(w.word_bounds) for w in sentence_windows)
            expected_unread += not held
            assert bool(row.any()) == held
    assert unread == expected_unread > 0  # the tiny data's long sentences cross windows
    assert (
        main(["--checkpoint", str(argument_run), "--epochs", "1", "--context", "--attention", "--out", str(tmp_path)])
        == 0
    )
    saved = json.loads((tmp_path / "argument-refit.json").read_text(encoding="utf-8"))
    assert saved["refitted head + attention maps"]["pairs no window holds whole"]["test"] == unread


@pytest.mark.slow
def test_the_marked_pass_benchmark_marks_every_trigger_and_entity(argument_run, tiny_data_root, tmp_path, monkeypatch):
    """bench.argument_marked reads one input per trigger: the trigger's opening marker where the linker reads it,
    one marker per entity, each labelled with its gold role; a smoke run scores dev and test."""
    from bench.argument_marked import ENTITY_MARK, TRIGGER_MARK, main, marked_inputs

    monkeypatch.setenv("ARABIC_NEWS_DATA", str(tiny_data_root))
    tagger = Tagger.load(argument_run, precision="fp32")
    tokenizer = tagger.encoder.tokenizer
    sentences = [s for s in load_split("anercorp-events:test", tiny_data_root) if s.arguments is not None]
    pieces = tagger.encoder.pieces([list(s.words) for s in sentences])
    inputs = marked_inputs(tokenizer, pieces, sentences, ROLES, max_length=512)
    (trigger_mark,) = tokenizer(TRIGGER_MARK, add_special_tokens=False)["input_ids"][-1:]
    (entity_mark,) = tokenizer(ENTITY_MARK, add_special_tokens=False)["input_ids"][-1:]
    expected = [
        (index, trigger)
        for index, s in enumerate(sentences)
        if chunks(list(s.tags["entities"]))
        for trigger in chunks(list(s.tags["events"]))
    ]
    assert [(item.sentence, item.trigger) for item in inputs] == expected

    def type_length(label: str) -> int:
        return len(tokenizer(label.replace(".", " ").replace("_", " ").lower(), add_special_tokens=False)["input_ids"])

    linked = set()
    for item in inputs:
        sentence = sentences[item.sentence]
        assert item.entities == chunks(list(sentence.tags["entities"]))  # all read at 512 pieces
        assert item.input_ids[item.trigger_at] == trigger_mark
        assert all(item.input_ids[at] == entity_mark for at in item.entity_at)
        # nothing else is added: [CLS], the words' pieces, the trigger's `@ * type * ... @`, each entity's
        # `# type ... #` (each mark one piece), [SEP]
        added = sum(type_length(label) for _, _, label in [item.trigger, *item.entities])
        assert len(item.input_ids) == 2 + sum(map(len, pieces[item.sentence])) + 4 + 2 * len(item.entities) + added
        roles = [NO_ROLE, *ROLES]
        linked |= {
            (item.sentence, WordArgument(item.trigger[:2], entity[:2], roles[label]))
            for entity, label in zip(item.entities, item.labels)
            if label
        }
    assert linked == {(index, argument) for index, s in enumerate(sentences) for argument in s.arguments}
    # a long sentence cut short: its later entities are not read, and the input still ends with [SEP]
    cut = marked_inputs(tokenizer, pieces, sentences, ROLES, max_length=40)
    assert all(len(item.input_ids) <= 40 and item.input_ids[-1] == tokenizer.sep_token_id for item in cut)
    assert all(at < 39 for item in cut for at in item.entity_at)
    assert sum(len(item.entities) for item in cut) < sum(len(item.entities) for item in inputs)
    assert (
        main(["--checkpoint", str(argument_run), "--epochs", "1", "--precision", "fp32", "--out", str(tmp_path)]) == 0
    )
    saved = json.loads((tmp_path / "argument-marked.json").read_text(encoding="utf-8"))
    assert saved["best"]["epoch"] == 1 and len(saved["best"]["test"]) == 2
