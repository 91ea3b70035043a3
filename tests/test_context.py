"""context: a window also reads the neighbouring sentences of its text, in training, in the Tagger and in eval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpora.reader import load_split
from models.checkpoint import CheckpointError, read_info
from models.tagger import Tagger
from train.config import ConfigError, load_config

CONFIGS = Path(__file__).parents[1] / "configs"
# two sentences of one text (the Tagger splits at the full stop)
TEXT = "أعلن الجيش السوري في دمشق أن القوات هاجمت المدينة. وقال محمد علي إن الرئيس زار حلب"


@pytest.mark.parametrize("value", ["-1", "12", "true", "2.5"])
def test_a_bad_context_is_a_config_error(value):
    # tiny.yaml: max_length 24, so context must stay under 12
    with pytest.raises(ConfigError, match="context must be a whole number of pieces from 0 to under half"):
        load_config(CONFIGS / "tiny.yaml", [f"context={value}"])


@pytest.fixture(scope="module")
def context_run(tiny_data_root, tmp_path_factory) -> Path:
    from train.run import run

    out = tmp_path_factory.mktemp("runs")
    run(
        load_config(
            CONFIGS / "tiny.yaml",
            [f"data_root={tiny_data_root}", f"output_dir={out}", "context=4", "training.max_steps=6"],
        )
    )
    return out / "tiny" / "model"


@pytest.mark.slow
def test_a_context_run_records_it_and_the_tagger_reads_it(context_run: Path, tiny_run: Path):
    from eval.model_card import write_model_card

    assert read_info(context_run).settings.context == 4
    assert Tagger.load(context_run).encoder.context == 4
    assert "up to 4 pieces of the neighbouring sentences" in write_model_card(context_run).read_text(encoding="utf-8")
    assert read_info(tiny_run / "model").settings.context == 0


@pytest.mark.slow
def test_the_tagger_reads_neighbours_within_a_text_never_across_texts(context_run: Path, monkeypatch):
    tagger = Tagger.load(context_run, precision="fp32")
    together = tagger.tag([TEXT, TEXT[::-1]])
    assert together == [tagger(TEXT), tagger(TEXT[::-1])]
    # what the encoder is told: two texts of two sentences each
    seen = []
    encode = tagger.encoder.encode
    monkeypatch.setattr(
        tagger.encoder,
        "encode",
        lambda sentences, documents=None: seen.append(documents) or encode(sentences, documents),
    )
    assert tagger.tag([TEXT, TEXT[::-1]]) == together
    assert seen == [[0, 0, 1, 1]]
    # and reading the neighbour changes the model's view of a sentence
    words = [sentence.split() for sentence in TEXT.split(". ")]
    assert tagger.predict_words(words, ["text", "text"]) != tagger.predict_words(words)


@pytest.mark.parametrize(
    "documents, error, says",
    [
        ("ab", TypeError, "got str"),
        (7, TypeError, "got int"),
        ([0], ValueError, "got 1 ids"),
        ([0, 0, 0], ValueError, "got 3 ids"),
    ],
)
@pytest.mark.slow
def test_document_ids_must_be_one_per_sentence(context_run: Path, documents, error, says):
    tagger = Tagger.load(context_run, precision="fp32")
    with pytest.raises(error, match=rf"documents must be a list of one id per sentence \(2\), {says}"):
        tagger.predict_words([["قال", "محمد"], ["في"]], documents)


@pytest.mark.slow
def test_eval_reads_the_sentences_of_a_file_as_one_text(context_run: Path, tiny_data_root: Path):
    from eval.harness import evaluate_with_predictions

    tagger = Tagger.load(context_run, precision="fp32")
    sentences = load_split("anercorp:test", tiny_data_root)[:20]
    assert len({sentence.document for sentence in sentences}) == 1 and sentences[0].document.endswith(".txt")
    _, predicted = evaluate_with_predictions(tagger, sentences, "anercorp:test")
    words = [list(sentence.words) for sentence in sentences]
    assert predicted == tagger.predict_words(words, [sentence.document for sentence in sentences])
    assert predicted != tagger.predict_words(words)


@pytest.mark.slow
def test_a_checkpoint_with_a_bad_context_is_refused(context_run: Path, tmp_path: Path):
    broken = shutil.copytree(context_run, tmp_path / "broken")
    info = json.loads((broken / "tagger.json").read_text(encoding="utf-8"))
    info["settings"]["context"] = -3
    (broken / "tagger.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(
        CheckpointError,
        match=r"tagger.json: context must be a whole number of pieces from 0 to under "
        r"half of max_length \(24\), got -3",
    ):
        read_info(broken)
