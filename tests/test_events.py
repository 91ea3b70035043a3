"""Two layers from one encoder pass: entities and event triggers, with corpora that annotate only one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from corpora.reader import load_split, read_conll
from eval.harness import evaluate
from models import Tagger
from models.checkpoint import read_info
from models.labels import bio_labels
from models.modeling import IGNORE, MultiHeadTagger
from train.encoders import tiny_encoder
from train.export import export_layer

EVENT_TYPES = ["Conflict.Attack", "Life.Die", "Movement.Transport", "Contact.Meet"]


@pytest.fixture(scope="module")
def joint_run(tiny_data_root, tmp_path_factory) -> Path:
    from train.config import load_config
    from train.run import run

    out = tmp_path_factory.mktemp("joint")
    config = load_config(
        Path(__file__).parents[1] / "configs" / "tiny.yaml",
        [
            f"data_root={tiny_data_root}",
            f"output_dir={out}",
            "name=joint",
            "training.epochs=2",
            f"layers.events={json.dumps(EVENT_TYPES)}",
            "data.train=[anercorp-events:train, aqmar:train]",
            "data.dev=anercorp-events:dev",
            "data.test=anercorp-events:test",
        ],
    )
    saved = os.environ.pop("ARABIC_NEWS_DATA", None)
    try:
        run(config)
    finally:
        if saved is not None:
            os.environ["ARABIC_NEWS_DATA"] = saved
    return out / "joint" / "model"


def test_an_unannotated_layer_adds_no_loss():
    """Masked, not `O`: the loss with events all IGNORE equals the entities-only loss."""
    encoder, _ = tiny_encoder({"vocab_size": 50}, ["دمشق", "محمد"])
    torch.manual_seed(0)
    model = MultiHeadTagger(encoder, {"entities": bio_labels(["PERS"]), "events": bio_labels(EVENT_TYPES)}).eval()
    input_ids = torch.tensor([[2, 7, 8, 3]])
    mask = torch.ones_like(input_ids)
    entities = torch.tensor([[IGNORE, 1, 0, IGNORE]])
    both = model(
        input_ids=input_ids,
        attention_mask=mask,
        labels_entities=entities,
        labels_events=torch.full_like(entities, IGNORE),
    )["loss"]
    alone = model(input_ids=input_ids, attention_mask=mask, labels_entities=entities)["loss"]
    as_outside = model(
        input_ids=input_ids,
        attention_mask=mask,
        labels_entities=entities,
        labels_events=torch.tensor([[IGNORE, 0, 0, IGNORE]]),
    )["loss"]
    assert torch.allclose(both, alone)
    assert not torch.allclose(as_outside, alone), "an all-O events layer would add loss"


def test_loss_weights_scale_each_layer():
    encoder, _ = tiny_encoder({"vocab_size": 50}, ["دمشق"])
    layers = {"entities": bio_labels(["PERS"]), "events": bio_labels(EVENT_TYPES)}
    model = MultiHeadTagger(encoder, layers, loss_weights={"events": 0.0}).eval()
    input_ids, mask = torch.tensor([[2, 7, 3]]), torch.ones(1, 3, dtype=torch.long)
    entities, events = torch.tensor([[IGNORE, 1, IGNORE]]), torch.tensor([[IGNORE, 3, IGNORE]])
    weighted = model(input_ids=input_ids, attention_mask=mask, labels_entities=entities, labels_events=events)["loss"]
    alone = model(input_ids=input_ids, attention_mask=mask, labels_entities=entities)["loss"]
    assert torch.allclose(weighted, alone)


def test_mixed_corpora_map_their_types(tiny_data_root):
    aqmar = load_split("aqmar:train", tiny_data_root)
    tags = {tag for sentence in aqmar for tag in sentence.tags["entities"]}
    assert "B-PERS" in tags and not any(tag.endswith(("-PER", "-MIS")) for tag in tags)
    assert all("events" not in sentence.tags for sentence in aqmar)


@pytest.mark.slow
def test_joint_checkpoint_tags_both_layers(joint_run: Path):
    tagger = Tagger.load(joint_run)
    assert list(tagger.layers) == ["entities", "events"]
    text = "وقال محمد إن هجوم دمشق أدى إلى قتل عشرة. ثم وصل الوفد إلى بغداد"
    doc = tagger(text)
    for span in doc.entities + doc.events:
        assert text[span.start : span.end] == span.text
    assert all(span.layer == "events" and span.label in EVENT_TYPES for span in doc.events)
    provenance = read_info(joint_run).provenance
    assert set(provenance["metrics"]["test"]) == {"entities", "events"}


@pytest.mark.slow
def test_eval_reports_trigger_scores(joint_run: Path, tiny_data_root: Path):
    tagger = Tagger.load(joint_run)
    report = evaluate(tagger, load_split("anercorp-events:test", tiny_data_root), "anercorp-events:test")
    assert set(report["layers"]) == {"entities", "events"}
    triggers = report["layers"]["events"]["triggers"]
    assert set(triggers) == {"identification", "classification", "classification_top_type"}
    assert triggers["identification"]["f1"] >= triggers["classification"]["f1"]


@pytest.mark.slow
def test_events_export_standalone(joint_run: Path, tmp_path: Path):
    from transformers import AutoModelForTokenClassification

    out = export_layer(joint_run, "events", tmp_path / "events")
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert model.config.id2label[1] == "B-Conflict.Attack" and model.config.num_labels == 9


@pytest.mark.slow
def test_cli_writes_both_layers_in_jsonl_and_conll(joint_run: Path, tmp_path: Path):
    from models.__main__ import main

    article = tmp_path / "a.txt"
    article.write_text("هجوم في دمشق.\nوصل محمد", encoding="utf-8")
    assert main(["--checkpoint", str(joint_run), str(article), "--out", str(tmp_path / "a.jsonl")]) == 0
    record = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    assert {"entities", "events"} <= record.keys()
    assert (
        main(["--checkpoint", str(joint_run), str(article), "--format", "conll", "--out", str(tmp_path / "a.conll")])
        == 0
    )
    written = (tmp_path / "a.conll").read_text(encoding="utf-8")
    assert written.startswith("# columns: token entities events\n-DOCSTART- ")
    # the project's own reader takes it back: two sentences, a column per layer
    sentences = read_conll(tmp_path / "a.conll", {"entities": 1, "events": 2})
    assert [list(sentence.words) for sentence in sentences] == [["هجوم", "في", "دمشق", "."], ["وصل", "محمد"]]
    assert all(len(sentence.tags["events"]) == len(sentence.words) for sentence in sentences)
