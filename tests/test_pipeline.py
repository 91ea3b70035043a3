"""End to end on a tiny random model: train -> checkpoint -> export -> eval -> tag. Mechanics, not quality."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from corpora.reader import load_split
from eval.harness import evaluate, write_report
from models import Tagger
from models.checkpoint import FORMAT_VERSION, HEADS_FILE, TAGGER_FILE, CheckpointError, load_checkpoint
from train.export import export_layer

pytestmark = pytest.mark.slow  # every test reads the session's trained tiny checkpoint (conftest.tiny_run)


def test_run_writes_reproducibility_files(tiny_run: Path):
    for name in ("config.yaml", "environment.json", "train.log", "log.csv"):
        assert (tiny_run / name).is_file(), name
    environment = json.loads((tiny_run / "environment.json").read_text())
    assert environment["packages"]["torch"] and environment["git_commit"]
    rows = list(csv.DictReader((tiny_run / "log.csv").open()))
    assert any(row.get("loss") for row in rows), "training loss is logged"
    assert sum(1 for row in rows if row.get("eval_entities_micro_f1")) == 3, "dev F1 once per epoch"
    dev = next(row for row in rows if row.get("eval_entities_micro_f1"))
    assert {"eval_entities_strict_micro_f1", "eval_mean_f1"} <= dev.keys()
    assert float(dev["eval_mean_f1"]) == float(dev["eval_entities_micro_f1"]), "one layer: the mean is its F1"
    assert "seed: 13" in (tiny_run / "config.yaml").read_text()


def test_training_lowers_the_loss(tiny_run: Path):
    losses = [float(row["loss"]) for row in csv.DictReader((tiny_run / "log.csv").open()) if row.get("loss")]
    assert losses[-1] < losses[0]


def test_checkpoint_holds_what_inference_needs(tiny_run: Path):
    model_dir = tiny_run / "model"
    names = {path.name for path in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", HEADS_FILE, TAGGER_FILE, "tokenizer.json"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names), "no pickle"
    meta = json.loads((model_dir / TAGGER_FILE).read_text())
    assert set(meta) == {"format", "settings", "provenance", "sha256"} and meta["format"] == FORMAT_VERSION
    settings, provenance = meta["settings"], meta["provenance"]
    assert settings["layers"]["entities"][0] == "O" and len(settings["layers"]["entities"]) == 9
    assert settings["max_length"] == 24 and settings["normalisation"] == "basic"
    assert {"dev", "test"} <= provenance["metrics"].keys()
    assert 0.0 <= provenance["metrics"]["test"]["entities"]["micro_f1"] <= 1.0
    assert provenance["encoder"] == "tiny:bert" and provenance["data"]["train"] == ["anercorp:train"]


def test_encoder_loads_in_plain_transformers(tiny_run: Path):
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(tiny_run / "model")
    tokenizer = AutoTokenizer.from_pretrained(tiny_run / "model")
    assert encoder.config.hidden_size == 32 and tokenizer.is_fast


def test_standalone_export_runs_in_a_plain_pipeline(tiny_run: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    out = export_layer(tiny_run / "model", "entities", tmp_path / "entities")
    standalone = AutoModelForTokenClassification.from_pretrained(out)
    assert standalone.config.id2label[1] == "B-PERS"
    # same logits as our model on the same input
    ours, tokenizer, _ = load_checkpoint(tiny_run / "model")
    inputs = tokenizer("أعلن محمد في دمشق", return_tensors="pt")
    with torch.no_grad():
        expected = ours(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])["entities"]
        got = standalone(**inputs).logits
    assert torch.allclose(expected, got, atol=1e-5)
    tagged = pipeline("token-classification", model=str(out))("أعلن محمد في دمشق")
    assert isinstance(tagged, list)
    with pytest.raises(CheckpointError, match="no layer 'events'"):
        export_layer(tiny_run / "model", "events", tmp_path / "events")


def test_eval_scores_every_gold_word(tiny_run: Path, tiny_data_root: Path, tmp_path: Path):
    tagger = Tagger.load(tiny_run / "model")
    sentences = load_split("anercorp:test", tiny_data_root)
    report = evaluate(tagger, sentences, "anercorp:test")
    scores = report["layers"]["entities"]
    assert scores["n_sentences"] == len(sentences) == 30
    assert scores["n_words"] == sum(len(sentence.words) for sentence in sentences)
    json_path, markdown_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["layers"]["entities"]["micro_f1"] == scores["micro_f1"]
    assert "| PERS |" in markdown_path.read_text()


def test_run_records_the_harness_figures_under_the_harness_names(tiny_run: Path, tiny_data_root: Path):
    report = evaluate(
        Tagger.load(tiny_run / "model", precision="fp32"), load_split("anercorp:test", tiny_data_root), "anercorp:test"
    )
    recorded = json.loads((tiny_run / "model" / TAGGER_FILE).read_text())["provenance"]["metrics"]["test"]["entities"]
    assert recorded == {key: report["layers"]["entities"][key] for key in ("micro_f1", "strict_micro_f1")}


def test_tagger_spans_slice_the_raw_text(tiny_run: Path):
    tagger = Tagger.load(tiny_run / "model")
    text = (
        "أعلن  التلفزيون الرسمي (السوري) أن القوات الحكومية استعادت السيطرة على مدينة دير الزور.\nوقال مُحَمَّد ـــ في دمشق"
    )
    doc = tagger(text)
    assert doc.text == text
    for span in doc.entities:
        assert text[span.start : span.end] == span.text
        assert span.label in {"PERS", "LOC", "ORG", "MISC"} and 0.0 < span.score <= 1.0
    ends = [(span.start, span.end) for span in doc.entities]
    assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:])), "spans of a layer never overlap"
    assert [doc.entities for doc in tagger.tag([text, text])] == [doc.entities, doc.entities]
    assert tagger.tag([]) == []
    with pytest.raises(TypeError, match="list of str"):
        tagger.tag(text)


def test_tagger_predicts_one_tag_per_word_even_for_long_sentences(tiny_run: Path):
    tagger = Tagger.load(tiny_run / "model")
    sentences = [["دمشق"] * 530, ["ّ", "ـ", "محمد"], []]
    predicted = tagger.predict_words(sentences)
    assert [len(p.tags["entities"]) for p in predicted] == [530, 3, 0]


@pytest.mark.parametrize("damage", ["truncate", "drop_tokenizer", "label_mismatch", "drop_heads"])
def test_broken_checkpoints_fail_clearly(tiny_run: Path, tmp_path: Path, damage: str):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run / "model", broken)
    if damage == "truncate":
        data = (broken / "model.safetensors").read_bytes()
        (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
        message = "truncated or corrupted"
    elif damage == "drop_tokenizer":
        (broken / "tokenizer.json").unlink()
        message = "tokenizer"
    elif damage == "label_mismatch":
        info = json.loads((broken / TAGGER_FILE).read_text())
        info["settings"]["layers"]["entities"] = info["settings"]["layers"]["entities"][:-2]
        (broken / TAGGER_FILE).write_text(json.dumps(info))
        message = "lists 7 labels"
    else:
        heads = load_file(str(broken / HEADS_FILE))
        save_file(
            {key: value for key, value in heads.items() if not key.startswith("entities.")}, str(broken / HEADS_FILE)
        )
        message = "no head for layer 'entities'"
    with pytest.raises(CheckpointError, match=message):
        Tagger.load(broken)


def test_a_finished_run_is_not_overwritten(tiny_run: Path, tiny_data_root: Path):
    from train.config import load_config
    from train.run import RunExists, run

    config = load_config(
        Path(__file__).parents[1] / "configs" / "tiny.yaml",
        [f"data_root={tiny_data_root}", f"output_dir={tiny_run.parent}"],
    )
    with pytest.raises(RunExists, match="--overwrite"):
        run(config)


def test_tag_cli_writes_jsonl(tiny_run: Path, tmp_path: Path, capsys):
    from models.__main__ import main

    article = tmp_path / "article.txt"
    article.write_text("أعلن محمد في دمشق أن القوات استعادت السيطرة.", encoding="utf-8")
    records = tmp_path / "in.jsonl"
    records.write_text(
        json.dumps({"id": "a", "text": "وقال أحمد علي في بغداد"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    assert main(["--checkpoint", str(tiny_run / "model"), str(article), str(records), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [str(article), "a"]
    for line in lines:
        assert all(line["text"][s["start"] : s["end"]] == s["text"] for s in line["entities"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes("دمشق".encode() + b"\xff\xfe")
    assert main(["--checkpoint", str(tiny_run / "model"), str(bad)]) == 2
    assert "byte offset 8" in capsys.readouterr().err
    assert main(["--checkpoint", str(tiny_run / "model"), str(article), "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1, got 0" in capsys.readouterr().err


def test_tag_cli_runs_at_the_precision_asked_for(tiny_run: Path, tmp_path: Path, monkeypatch):
    from models.__main__ import main
    from models.tagger import Tagger

    applied, original = [], Tagger.with_precision
    monkeypatch.setattr(
        Tagger, "with_precision", lambda self, precision: applied.append(precision) or original(self, precision)
    )
    article = tmp_path / "article.txt"
    article.write_text("أعلن محمد في دمشق أن القوات استعادت السيطرة.", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["--checkpoint", str(tiny_run / "model"), str(article), "--out", str(out), "--precision", "int8"]) == 0
    assert applied == ["int8"]
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(record["text"][s["start"] : s["end"]] == s["text"] for s in record["entities"])
    assert main(["--checkpoint", str(tiny_run / "model"), str(article), "--out", str(out)]) == 0
    assert applied == ["int8", "auto"], "auto (bf16 where native, else fp32) is the default"
