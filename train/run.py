"""One training run, top to bottom: config -> corpora -> features -> Trainer -> export -> measured F1.

A run writes runs/<name>/: config.yaml (resolved), environment.json (package versions, git commit),
train.log, log.csv (loss / dev F1 per logging step and epoch), and model/ (the checkpoint).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate import PartialState
from accelerate.utils import DistributedType, gather_object
from transformers import PreTrainedTokenizerFast, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from corpora.reader import PROJECT_ROOT, Sentence, data_root, load_split
from eval.arguments import argument_scores
from eval.metrics import score_layer
from models.arguments import ARGUMENT_KEY
from models.checkpoint import TAGGER_FILE, save_checkpoint
from models.encoding import WordEncoder
from models.errors import UserError
from models.modeling import IGNORE, MultiHeadTagger, label_key
from models.settings import TaggerSettings
from models.tagger import Tagger
from train.config import ConfigError, tagger_settings
from train.embeddings import fold_seen_rows, train_seen_rows
from train.encoders import load_encoder
from train.features import WINDOW_INDEX, Collator, WindowOrigin, build_features

log = logging.getLogger("train")
PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "safetensors", "seqeval", "evaluate", "numpy")


class RunExists(UserError, RuntimeError):
    """The run folder holds a finished or unfinished run that this command would clobber."""


class GpuUnavailable(UserError, RuntimeError):
    pass


class OutOfMemory(UserError, RuntimeError):
    pass


TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it was cut short


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": git_commit(),
        "cuda": torch.cuda.is_available(),
        "torch_threads": torch.get_num_threads(),
    }


# The dev metric that picks the best epoch (metric_for_best_model): the mean of each layer's micro_f1 and, with
# arguments, their labelled_f1. The other dev keys are the harness's names (`python -m eval`) after the layer's.
MEAN_F1 = "mean_f1"


def layer_f1(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """seqeval micro F1, default mode (as published AraBERT figures) and strict IOB2, as the harness reports them."""
    scores = score_layer(gold, pred)
    return {"micro_f1": scores["micro_f1"], "strict_micro_f1": scores["strict_micro_f1"]}


def measure(tagger: Tagger, sentences: list[Sentence]) -> dict[str, dict[str, float]]:
    """Per annotated layer, F1 of the tagger's word predictions on `sentences`."""
    predicted = tagger.predict_words(
        [list(sentence.words) for sentence in sentences], [sentence.document for sentence in sentences]
    )
    scores = {}
    for layer in tagger.layers:
        pairs = [(list(s.tags[layer]), p.tags[layer]) for s, p in zip(sentences, predicted) if layer in s.tags]
        if pairs:
            scores[layer] = layer_f1([g for g, _ in pairs], [p for _, p in pairs])
    annotated = [(s.arguments, p.arguments) for s, p in zip(sentences, predicted) if s.arguments is not None]
    if tagger.roles and annotated:  # end to end: predicted triggers and entities (eval also scores gold ones)
        labelled = argument_scores([gold for gold, _ in annotated], [found for _, found in annotated])["labelled"]
        scores[ARGUMENT_KEY] = {"labelled_f1": labelled["f1"]}
    return scores


def resolve_device(config: dict) -> str:
    """cuda or cpu, from training.device; a run that asks for a GPU on a machine without one stops here."""
    wanted = config["training"]["device"]
    if wanted not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"training.device must be auto, cuda or cpu, got {wanted!r}")
    has_gpu = torch.cuda.is_available()
    if wanted == "cuda" and not has_gpu:
        raise GpuUnavailable(
            f"run {config['name']!r} asks for a GPU (training.device: cuda) but torch sees none "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). To train on this CPU anyway, "
            "add training.device=cpu (slow for a BERT-base encoder); for the offline CPU path run `make demo` "
            "(configs/e5-small-offline.yaml)."
        )
    return "cuda" if has_gpu and wanted != "cpu" else "cpu"


def resolve_precision(name: str, device: str) -> str:
    if name == "auto":
        if device == "cpu":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"  # fp16: the Trainer scales the loss
    if name not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"training.precision must be auto, fp32, bf16 or fp16, got {name!r}")
    if name == "fp16" and device == "cpu":
        raise ConfigError("training.precision fp16 needs a GPU; use fp32 or bf16 on CPU")
    return name


def last_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete resumable checkpoint under runs/<name>/trainer, if any."""
    steps = []
    for folder in trainer_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = folder.name.rsplit("-", 1)[1]
        if suffix.isdigit() and _is_complete(folder / TRAINER_STATE):
            steps.append((int(suffix), folder))
    return max(steps)[1] if steps else None


def _is_complete(state_file: Path) -> bool:
    """A trainer state that parses: a run killed while writing it leaves the file there, cut short."""
    try:
        json.loads(state_file.read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def check_run_folder(out: Path, config: dict, overwrite: bool, resume: bool) -> Path | None:
    """What this command may do with runs/<name>/: returns the checkpoint to resume from, or raises RunExists."""
    finished = (out / "model" / TAGGER_FILE).exists()
    checkpoint = last_checkpoint(out / "trainer")
    if resume:
        if finished:
            raise RunExists(f"{out} holds a finished run: nothing to resume")
        if checkpoint is None:
            raise RunExists(
                f"{out} holds no resumable checkpoint ({out / 'trainer'}/{PREFIX_CHECKPOINT_DIR}-*); "
                "start the run without --resume"
            )
        saved = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))
        changed = sorted(_changed_keys(saved, config))
        if changed:
            raise RunExists(
                f"--resume needs the interrupted run's config ({out / 'config.yaml'}), but {changed} differ; "
                "pass the same config and overrides, or start a new run with name=..."
            )
        return checkpoint
    if finished and not overwrite:
        raise RunExists(f"{out} already holds a finished run; pass --overwrite to replace it, or set name=...")
    if checkpoint is not None and not overwrite:
        raise RunExists(
            f"{out} holds an unfinished run (last checkpoint: {checkpoint.name}); pass --resume to "
            "continue it, or --overwrite to start again"
        )
    return None


def _changed_keys(saved, current, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            key
            for name in saved.keys() | current.keys()
            for key in _changed_keys(saved.get(name), current.get(name), f"{prefix}{name}.")
        ]
    return [] if saved == current else [prefix.rstrip(".")]


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer, to prove that all processes hold the same weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class CheckpointEvery(TrainerCallback):
    """Resumable checkpoints every N optimizer steps, besides the per-epoch ones that choose the best model."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if self.steps and state.global_step % self.steps == 0:
            control.should_save = True


class CsvLog(TrainerCallback):
    """Every Trainer log record (training loss, learning rate, dev F1 per epoch) as a CSV row."""

    def __init__(self, path: Path, resumed_at_step: int | None = None):
        self.path = path
        self.rows: list[dict] = []
        if resumed_at_step is not None and path.is_file():  # rows after the checkpoint are logged again
            with path.open(encoding="utf-8") as handle:
                self.rows = [
                    {key: value for key, value in row.items() if value != ""}
                    for row in csv.DictReader(handle)
                    if int(row["step"]) <= resumed_at_step
                ]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.rows.append({"step": state.global_step, "epoch": round(state.epoch or 0, 4), **logs})
        fields = list(dict.fromkeys(key for row in self.rows for key in row))
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)


def dev_metrics(
    sentences: list[Sentence], origins: list[WindowOrigin], layers: dict[str, list[str]], arguments: bool = False
):
    """compute_metrics for the Trainer: windows are put back into sentences before eval/metrics.py scores them. With
    arguments, also the F1 of the roles of the gold-span pairs (the linking alone, as eval's gold-mention score)."""

    def compute(prediction) -> dict[str, float]:
        predicted = prediction.predictions
        predicted = predicted if isinstance(predicted, (tuple, list)) else (predicted,)
        window_indices = prediction.label_ids[-1]  # WINDOW_INDEX is the last label name
        seen = np.bincount(np.asarray(window_indices, dtype=np.int64), minlength=len(origins))
        if len(seen) != len(origins) or not (seen == 1).all():
            raise RuntimeError(
                f"dev predictions cover {int((seen > 0).sum())} of {len(origins)} windows, "
                f"{int((seen > 1).sum())} of them more than once: the evaluation lost or repeated samples"
            )
        log.info("dev F1 over all %d dev windows, each scored once", len(origins))
        scores, headline = {}, []
        for layer_index, (layer, labels) in enumerate(layers.items()):
            tags = [["O"] * len(sentence.words) for sentence in sentences]
            for row, window in enumerate(window_indices):
                origin = origins[int(window)]
                for word, position in zip(origin.words, origin.positions):
                    tags[origin.sentence][word] = labels[int(predicted[layer_index][row][position])]
            annotated = [index for index, sentence in enumerate(sentences) if layer in sentence.tags]
            if annotated:
                result = layer_f1([list(sentences[i].tags[layer]) for i in annotated], [tags[i] for i in annotated])
                scores.update({f"{layer}_{key}": value for key, value in result.items()})
                headline.append(result["micro_f1"])
        if arguments and any(sentence.arguments is not None for sentence in sentences):
            roles, gold = np.asarray(predicted[len(layers)]), np.asarray(prediction.label_ids[len(layers)])
            scored = gold != IGNORE  # padding
            found = int(((roles != 0) & scored).sum())
            correct = int(((roles == gold) & (gold > 0) & scored).sum())
            # every gold argument, also those of pairs no single window reads (features.PairStats)
            expected = sum(len(sentence.arguments or ()) for sentence in sentences)
            scores[f"{ARGUMENT_KEY}_labelled_f1"] = (
                round(2 * correct / (found + expected), 6) if found + expected else 0.0
            )
            headline.append(scores[f"{ARGUMENT_KEY}_labelled_f1"])
        scores[MEAN_F1] = float(np.mean(headline)) if headline else 0.0
        return scores

    return compute


def argmax_logits(logits, labels):
    # keep only label ids in memory during evaluation, not full logits
    logits = logits if isinstance(logits, (tuple, list)) else (logits,)
    return tuple(layer_logits.argmax(-1) for layer_logits in logits)


def build_optimizer(model: MultiHeadTagger, training: dict) -> torch.optim.Optimizer:
    head_lr = training["head_learning_rate"] or training["learning_rate"]
    decay, no_decay = [], []
    for parameter in model.encoder.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)  # no decay on biases and LayerNorms
    groups = [
        {"params": decay, "weight_decay": training["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
        {
            "params": [p for name, p in model.named_parameters() if not name.startswith("encoder.")],
            "weight_decay": 0.0,
            "lr": head_lr,
        },
    ]  # the layers' heads and the argument head
    return torch.optim.AdamW([group for group in groups if group["params"]], lr=training["learning_rate"])


@dataclass(frozen=True)
class Data:
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]


@dataclass(frozen=True)
class Prepared:
    """The model to train and what it trains on: everything the Trainer needs besides its arguments."""

    model: MultiHeadTagger
    tokenizer: PreTrainedTokenizerFast
    settings: TaggerSettings
    train_features: list[dict]
    dev_features: list[dict]
    dev_origins: list[WindowOrigin]


def read_data(config: dict) -> Data:
    root = data_root(config["data_root"])
    train = [sentence for name in config["data"]["train"] for sentence in load_split(name, root)]
    dev = load_split(config["data"]["dev"], root) if config["data"]["dev"] else []
    test = load_split(config["data"]["test"], root) if config["data"]["test"] else []
    log.info("data: %d train, %d dev, %d test sentences", len(train), len(dev), len(test))
    return Data(train, dev, test)


def run(config: dict, overwrite: bool = False, resume: bool = False, command: str | None = None) -> Path:
    """Train, export and measure; returns runs/<name>/model. Under `accelerate launch` every process runs this;
    the main process alone writes the run files and the checkpoint."""
    out = Path(config["output_dir"]) / config["name"]
    training = config["training"]
    device = resolve_device(config)
    precision = resolve_precision(training["precision"], device)
    state = PartialState(cpu=device == "cpu")  # joins the process group that accelerate launch set up
    checkpoint = check_run_folder(out, config, overwrite, resume)  # every process checks, so every process stops
    state.wait_for_everyone()
    if state.is_main_process:
        if overwrite and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:
            (out / "config.yaml").write_text(
                yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
        (out / "environment.json").write_text(json.dumps(environment(), indent=2) + "\n", encoding="utf-8")
    state.wait_for_everyone()
    handler = logging.FileHandler(out / "train.log", encoding="utf-8")
    rank = f" [rank {state.process_index}/{state.num_processes}]" if state.num_processes > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s{rank} %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        return _train(config, out, device, precision, state, checkpoint, command)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        # A process that exits with its process group alive can abort in the group's threads at interpreter
        # exit ("terminate called without an active exception", SIGABRT): seen once on rank 1, which ends
        # while the main process still exports. No collective follows here, so each process closes its own.
        state.destroy_process_group()


def _train(
    config: dict,
    out: Path,
    device: str,
    precision: str,
    state: PartialState,
    checkpoint: Path | None,
    command: str | None,
) -> Path:
    """The run's steps, in order: data, model, trainer, training, export and measure."""
    started = time.time()
    if config["training"]["threads"]:
        torch.set_num_threads(int(config["training"]["threads"]))
    set_seed(config["seed"])
    data = read_data(config)
    prepared = prepare_model(config, data)
    trainer = build_trainer(config, out, prepared, data, device, precision, state.num_processes, checkpoint)
    fit(trainer, config, device, precision, state.num_processes, checkpoint)
    check_identical_weights(trainer, state)
    if not state.is_main_process:
        return out / "model"
    return export_and_measure(trainer, prepared, data, config, out / "model", command, started)


def prepare_model(config: dict, data: Data) -> Prepared:
    """The encoder with its heads, and the train and dev windows it reads."""
    settings = tagger_settings(config)
    encoder, tokenizer = load_encoder(config["encoder"], config["tiny"], [w for s in data.train for w in s.words])
    if config["embeddings"] == "freeze":
        encoder.get_input_embeddings().weight.requires_grad_(False)
    model = MultiHeadTagger(
        encoder, settings.layers, config["training"]["dropout"], settings.loss_weights, settings.roles
    )
    word_encoder = WordEncoder(
        tokenizer, settings.normalisation, settings.max_length, settings.overlap, settings.context
    )
    train_features, _ = build_features(
        data.train,
        word_encoder,
        settings.layers,
        "+".join(config["data"]["train"]),
        settings.word_pooling,
        settings.roles,
    )
    if config["embeddings"] == "seen":
        seen = train_seen_rows(encoder, [piece for feature in train_features for piece in feature["input_ids"]])
        log.info("training the embedding rows of %d pieces seen in the training data", len(seen.delta) - 1)
    dev_features, dev_origins = build_features(
        data.dev, word_encoder, settings.layers, str(config["data"]["dev"]), settings.word_pooling, settings.roles
    )
    return Prepared(model, tokenizer, settings, train_features, dev_features, dev_origins)


def effective_batch(training: dict, processes: int) -> int:
    return training["batch_size"] * training["gradient_accumulation_steps"] * processes


def build_trainer(
    config: dict,
    out: Path,
    prepared: Prepared,
    data: Data,
    device: str,
    precision: str,
    processes: int,
    checkpoint: Path | None,
) -> Trainer:
    training = config["training"]
    model = prepared.model
    log.info(
        "%d train windows, %d dev windows; device %s, precision %s; effective batch %d = %d per device x %d "
        "accumulation steps x %d processes; trainable parameters %d",
        len(prepared.train_features),
        len(prepared.dev_features),
        device,
        precision,
        effective_batch(training, processes),
        training["batch_size"],
        training["gradient_accumulation_steps"],
        processes,
        sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    has_dev = bool(prepared.dev_features)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out / "tensorboard"))
    args = TrainingArguments(
        output_dir=str(out / "trainer"),
        seed=config["seed"],
        num_train_epochs=training["epochs"],
        max_steps=training["max_steps"],
        per_device_train_batch_size=training["batch_size"],
        per_device_eval_batch_size=training["eval_batch_size"],
        gradient_accumulation_steps=training["gradient_accumulation_steps"],
        warmup_steps=training["warmup_ratio"],  # a float below 1 is a ratio of the total steps
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch" if has_dev else "no",
        # per epoch (to pick the best model) and every checkpoint_every_steps (CheckpointEvery) for --resume
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=has_dev,
        metric_for_best_model=MEAN_F1 if has_dev else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=training["logging_steps"],
        report_to=["tensorboard"] if _installed("tensorboard") else [],
        label_names=[label_key(name) for name in model.loss_weights] + [WINDOW_INDEX],  # layers, then arguments
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        dataloader_pin_memory=device == "cuda",
        disable_tqdm=False,
    )
    resumed_at = json.loads((checkpoint / TRAINER_STATE).read_text())["global_step"] if checkpoint else None
    metrics = dev_metrics(data.dev, prepared.dev_origins, prepared.settings.layers, bool(prepared.settings.roles))
    return Trainer(
        model=model,
        args=args,
        train_dataset=prepared.train_features,
        eval_dataset=prepared.dev_features or None,
        data_collator=Collator(prepared.tokenizer.pad_token_id),
        compute_metrics=metrics if has_dev else None,
        preprocess_logits_for_metrics=argmax_logits,
        optimizers=(build_optimizer(model, training), None),
        callbacks=[CheckpointEvery(training["checkpoint_every_steps"]), CsvLog(out / "log.csv", resumed_at)],
    )


def fit(trainer: Trainer, config: dict, device: str, precision: str, processes: int, checkpoint: Path | None) -> None:
    """trainer.train, resumed from `checkpoint` if given; running out of memory says which settings to lower."""
    if checkpoint is not None:
        log.info("resuming from %s", checkpoint)
    training = config["training"]
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except torch.OutOfMemoryError as err:
        raise OutOfMemory(
            f"out of {device.upper()} memory at training.batch_size={training['batch_size']}, max_length="
            f"{config['max_length']}, precision {precision}. Lower training.batch_size and raise "
            "training.gradient_accumulation_steps to keep the effective batch "
            f"({effective_batch(training, processes)}), "
            f"or lower max_length (and training.eval_batch_size if it failed in evaluation); on a GPU without bf16 "
            f"use training.precision=fp16. ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
        ) from err


def check_identical_weights(trainer: Trainer, state: PartialState) -> None:
    if state.distributed_type == DistributedType.FSDP:  # FSDP shards the weights by design
        return
    digests = gather_object([weights_digest(trainer.model)])
    if len(set(digests)) != 1:
        raise RuntimeError(f"the {state.num_processes} processes ended with different weights: {digests}")
    log.info("weights sha256 %s, identical on all %d processes", digests[0], state.num_processes)


def export_and_measure(
    trainer: Trainer, prepared: Prepared, data: Data, config: dict, model_dir: Path, command: str | None, started: float
) -> Path:
    """The checkpoint, with the F1 its own Tagger measures on dev and test recorded in its provenance."""
    # without accelerate's autocast wrapper on forward: the metrics below are the exported fp32 model's,
    # the same that `python -m eval` measures from the checkpoint
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False).float().eval()
    fold_seen_rows(model.encoder)
    provenance = {
        "encoder": config["encoder"],
        "data": config["data"],
        "git_commit": git_commit(),
        "run": config["name"],
    }
    if command:  # the model card shows it; without it, the card points at the saved config.yaml
        provenance["command"] = command
    tagger = Tagger(model, prepared.tokenizer, prepared.settings, device=next(model.parameters()).device)
    provenance["metrics"] = {
        split: measure(tagger, sentences) for split, sentences in (("dev", data.dev), ("test", data.test)) if sentences
    }
    provenance["train_seconds"] = round(time.time() - started, 1)
    save_checkpoint(model, prepared.tokenizer, model_dir, prepared.settings, provenance)
    shutil.rmtree(model_dir.parent / "trainer", ignore_errors=True)  # resumable state; the checkpoint is model/
    log.info("exported %s in %.0f s; measured %s", model_dir, time.time() - started, json.dumps(provenance["metrics"]))
    return model_dir


def _installed(package: str) -> bool:
    try:
        importlib.metadata.version(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False
