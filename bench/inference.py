"""Inference speed: the Tagger against transformers.pipeline("token-classification", aggregation_strategy="first",
or "average" for a word_pooling mean checkpoint) on the same checkpoint (its entities layer exported
standalone) and the same texts, side by side in one run; and how far the standalone export's spans are the
Tagger's.

    python -m bench.inference --checkpoint runs/e5-small-joint/model
    python -m bench.inference --limit 100 --passes 1 --rows pipeline,tagger-argmax     # a quick look

Texts: every ANERcorp test sentence as raw text (its words joined by spaces, one text each) and the seed
news articles. Words are whitespace-separated tokens, counted the same way for every row. The pipeline is
given stride=32 so that it tags the whole of an article longer than its 512 pieces instead of silently
truncating it. The exports run in child processes (python -m train.export).

Timing: every row runs in a child process of its own (peak RSS = that child's VmHWM, model included) that stays
up for the whole run, so all rows are loaded at once (about 1.3 GB each for e5-small). After one warm-up batch
and one untimed pass (whose spans are compared), the rows' timed passes are interleaved: each row once per round,
in reverse order every other round (bench/common.py), so that a loaded minute on a shared machine falls on all
rows alike. Words/s is the median of a row's passes; its speed against the baseline is taken per round and
reported as the median and range of those ratios, with the machine's load average before and after.

Span parity: on every ANERcorp sentence the entity spans (start, end, type) of each Tagger row are compared
with the baseline pipeline's, and those of each pipeline row with the exact Tagger's; each sentence that
differs is put down to a cause (see CAUSES). The export is run twice: as train.export writes it (its tokenizer
cuts the Tagger's words) and with the encoder's own tokenizer.json in its place, as exports were before
(pipeline-encoder-tokenizer).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench.common import (
    DEFAULT_CHECKPOINT,
    ROOT,
    ServingChild,
    check_checkpoint,
    command_line,
    emit,
    interleaved_passes,
    load_average,
    machine,
    markdown_table,
    raise_user_error,
    run_child,
    serve,
    speed_ratios,
    timed,
    write_result,
)
from models.errors import reports_user_errors

PIPELINE_STRIDE = 32
PASSES = 5  # timed passes over the same texts per row, interleaved across rows
PARTS = ("sentences", "articles")
# row -> what it runs; the first is the baseline of every ratio
ROWS = {
    "pipeline": "transformers pipeline on the standalone export, default batch (1 text at a time)",
    "pipeline-batch32": "transformers pipeline on the standalone export, batch_size=32",
    "pipeline-encoder-tokenizer": "transformers pipeline on the standalone export with the encoder's own "
    "tokenizer.json, as exported before its tokenizer cut the Tagger's words",
    "tagger": "Tagger as loaded by default: viterbi, precision auto",
    "tagger-fp32": "Tagger, viterbi, fp32 (exact on every machine)",
    "tagger-argmax": "Tagger, argmax, fp32 (like for like with the pipeline)",
    "tagger-bf16": "Tagger, viterbi, bf16 matmuls (autocast)",
    "tagger-int8": "Tagger, viterbi, int8 dynamic quantisation of every nn.Linear",
    "tagger-onnx": "Tagger, viterbi, on onnxruntime",
}
BASELINE = "pipeline"
ENCODER_TOKENIZER = "pipeline-encoder-tokenizer"
# why a sentence's spans differ between a pipeline and the Tagger, checked in this order (the first that applies is
# counted)
CAUSES = {
    "spaces": "the pipeline's span is the Tagger's with the space before the word: the encoder's own tokenizer reads "
    "that space into the word's first piece (`▁word`), and the piece's offsets include it",
    "words": "the pipeline cuts this part of the text into other words than the Tagger. For a tokenizer without a "
    "continuing-subword prefix (sentencepiece) transformers starts a word only at a space, whatever the "
    "tokenizer's pre-tokenizer: punctuation written against a word stays on it (`كابول؛`), and the lone `▁` "
    "piece that this vocabulary puts before some words is a word of its own, labelled alone (a span of "
    "the space before the word, or of its first letter where the tokenizer's offsets leave the space out), "
    "and the real word then starts at its second piece. For a WordPiece tokenizer it takes the tokenizer's "
    "words, which the encoder's own tokenizer cuts by its own rules. The Tagger splits punctuation off and "
    "labels each word from all its pieces (or its first), as in training",
    "sentences": "the Tagger splits the text into several sentences (a `.` `?` `!` inside it), so each part is "
    "encoded without the other's context",
    "window": "a sentence is longer than the Tagger's window (max_length pieces), so it is encoded in "
    "overlapping windows; the pipeline sees up to 512 pieces at once",
    "normalisation": "the Tagger normalises a word of the sentence (tashkeel, tatweel, presentation forms) and this "
    "pipeline's tokenizer does not, so the encoder sees other pieces",
    "decoding": "viterbi decoding (the Tagger with argmax agrees with the pipeline on this span)",
    "numerics": "the same Tagger computed another way (int8, bf16, onnxruntime): the logits differ a little and "
    "tip close calls",
    "other": "none of the above: the pipeline averages the pieces' probabilities where the Tagger averages their "
    "logits (word_pooling mean), numerical (other padding in a batch, other kernels), or unexplained",
}
# rows that change how the same model is computed, also compared with the plain torch Tagger of their decoding
EXACT = "tagger-fp32"
SAME_MODEL = {row: EXACT for row in ("tagger", "tagger-bf16", "tagger-int8", "tagger-onnx")}


# ------------------------------------------------------------------------------------------- texts


def anercorp_sentences(limit: int | None):
    from corpora.reader import data_root, load_split

    sentences = load_split("anercorp:test", data_root())
    return sentences[:limit] if limit else sentences


def article_texts() -> list[str]:
    from corpora.reader import data_root

    return [path.read_text(encoding="utf-8") for path in sorted((data_root() / "news").glob("*.txt"))]


def count_words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


# ------------------------------------------------------------------------------------------- child: one row


def load_tagger(row: str, checkpoint: Path, onnx_file: Path):
    from models import Tagger

    decoding = "argmax" if row == "tagger-argmax" else "viterbi"
    if row == "tagger-onnx":
        return Tagger.load_onnx(checkpoint, onnx_file=onnx_file, decoding=decoding)
    precision = {"tagger": "auto", "tagger-bf16": "bf16", "tagger-int8": "int8"}.get(row, "fp32")
    return Tagger.load(checkpoint, device="cpu", decoding=decoding, precision=precision)


def pipeline_words(pipe, text: str, aggregation: str) -> list[tuple[int, int]]:
    """The words transformers' pipeline groups the pieces of `text` into, as (start, end): its own
    gather_pre_entities and aggregate_words, given scores that play no part in the grouping."""
    import numpy as np
    from transformers.pipelines.token_classification import AggregationStrategy

    encoded = pipe.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = np.array(encoded["input_ids"])
    strategy = AggregationStrategy(aggregation)
    pieces = pipe.gather_pre_entities(
        text,
        ids,
        np.zeros((len(ids), pipe.model.config.num_labels)),
        encoded["offset_mapping"],
        np.array(encoded["special_tokens_mask"]),
        strategy,
    )
    return [(word["start"], word["end"]) for word in pipe.aggregate_words(pieces, strategy)]


def serve_row(row: str, checkpoint: Path, standalone: Path, onnx_file: Path, limit: int | None) -> None:
    """One row's child: load it, warm up, tag every text once untimed (the spans the parent compares), then run a
    timed pass of `sentences` or `articles` per request; `finish` answers the peak RSS."""
    import torch

    from bench.common import peak_rss_mb

    gold = anercorp_sentences(limit)
    texts = {"sentences": [" ".join(sentence.words) for sentence in gold], "articles": article_texts()}
    tagger = None
    if row.startswith("pipeline"):
        from transformers import pipeline

        from train.export import pipeline_aggregation

        warnings.simplefilter("ignore")  # "Tokenizer does not support real words": once per piece for sentencepiece
        aggregation = pipeline_aggregation(checkpoint)
        pipe = pipeline("token-classification", model=str(standalone), device="cpu", aggregation_strategy=aggregation)
        batch = {"batch_size": 32} if row == "pipeline-batch32" else {}

        def tag(batch_texts: list[str]) -> list[list[tuple[int, int, str]]]:
            outputs = pipe(batch_texts, stride=PIPELINE_STRIDE, **batch) if batch_texts else []
            return [
                [(entity["start"], entity["end"], entity["entity_group"]) for entity in entities]
                for entities in outputs
            ]
    else:
        tagger = load_tagger(row, checkpoint, onnx_file)

        def tag(batch_texts: list[str]) -> list[list[tuple[int, int, str]]]:
            return [[(span.start, span.end, span.label) for span in doc.entities] for doc in tagger.tag(batch_texts)]

    tag(texts["sentences"][:32])  # warm-up: first-call allocations and lazy initialisation are not what we measure
    spans = {part: tag(part_texts) for part, part_texts in texts.items()}  # the timed passes return the same
    ready = {
        "row": row,
        "threads": torch.get_num_threads(),
        "spans": spans["sentences"],
        "article_spans": spans["articles"],
        **{part: {"texts": len(part_texts), "words": count_words(part_texts)} for part, part_texts in texts.items()},
    }
    if tagger is None:
        ready["pipeline_words"] = [pipeline_words(pipe, text, aggregation) for text in texts["sentences"]]
    else:
        from eval.harness import evaluate

        ready["entity_f1"] = evaluate(tagger, gold, "anercorp:test")["layers"]["entities"]["micro_f1"]
        ready["precision"] = tagger.precision
    seconds: dict[str, list[float]] = {part: [] for part in texts}

    def timed_pass(part: str) -> dict:
        seconds[part].append(timed(lambda: tag(texts[part])))
        return {"seconds": seconds[part][-1]}

    def finish() -> dict:
        result = {"peak_rss_mb": peak_rss_mb()}
        if row == EXACT and seconds["articles"]:
            result["compute"] = compute_use(tagger, texts["articles"], statistics.median(seconds["articles"]))
        return result

    serve(
        ready,
        {"sentences": lambda: timed_pass("sentences"), "articles": lambda: timed_pass("articles"), "finish": finish},
    )


def matmul_peak_gflops(dtype, size: int = 2048, repeats: int = 5) -> float:
    """This CPU's best rate on one large square matmul: the most any implementation gets from it."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def compute_use(tagger, articles: list[str], seconds: float) -> dict:
    """How close the fp32 Tagger runs to the CPU's fp32 matmul peak on the articles, counting only the encoder
    layers' Linear weights (2 flops each per piece; attention scores not counted, so this is a lower bound).
    Near the peak, no implementation at the same precision can be much faster, the pipeline's included."""
    import torch

    from models.tagger import sentence_words
    from models.text import split_sentences

    words, documents = sentence_words([split_sentences(text) for text in articles])  # as Tagger.tag reads them
    pieces = sum(len(window.input_ids) for encoded in tagger.encoder.encode(words, documents) for window in encoded)
    weights = sum(
        module.weight.numel()
        for name, module in tagger.model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layer." in name
    )
    achieved = 2 * weights * pieces / seconds / 1e9
    return {
        "pieces": pieces,
        "linear_weights": weights,
        "gflops": achieved,
        "peak_fp32_gflops": matmul_peak_gflops(torch.float32),
        "peak_bf16_gflops": matmul_peak_gflops(torch.bfloat16),
    }


def onnx_parity(checkpoint: Path, onnx_file: Path, limit: int | None, batch_size: int = 32) -> dict:
    """Max |logit difference| between torch and onnxruntime over real sentences, in padded batches, per layer."""
    import torch

    from models import Tagger

    on_torch, on_onnx = (
        Tagger.load(checkpoint, device="cpu", precision="fp32"),
        Tagger.load_onnx(checkpoint, onnx_file=onnx_file),
    )
    sentences = [list(sentence.words) for sentence in anercorp_sentences(limit)]
    windows = [window for encoded in on_torch.encoder.encode(sentences) for window in encoded]
    worst = {layer: 0.0 for layer in on_torch.layers}
    with torch.inference_mode():
        for begin in range(0, len(windows), batch_size):
            inputs = on_torch.collate(windows[begin : begin + batch_size])
            expected, got = on_torch.model(**inputs), on_onnx.model(**inputs)
            real = inputs["attention_mask"].bool()
            for layer in worst:
                difference = (expected[layer][real] - got[layer][real]).abs().max().item()
                worst[layer] = max(worst[layer], difference)
    return {"row": "onnx-parity", "windows": len(windows), "sentences": len(sentences), "max_abs_logit_diff": worst}


# ------------------------------------------------------------------------------------------- parent: parity


def difference_causes(
    texts: list[str],
    reference: list[list],
    spans: list[list],
    tokenizer,
    settings,
    pipeline: str | None = None,
    words: list[list] | None = None,
    normalises: bool = False,
    argmax_spans: list[list] | None = None,
) -> list[dict]:
    """Each sentence whose spans differ from the reference's, with the causes (from CAUSES) of its differing spans;
    the sentence is counted under the first. pipeline: which side is a pipeline ("reference" or "spans"), whose
    words per sentence are `words` and whose tokenizer applies the Tagger's normalisation or not; None: both sides
    are the Tagger computed two ways, where only numerics can differ. argmax_spans: the argmax Tagger's, to tell
    viterbi's repairs apart."""
    from models.text import normalise_word, split_sentences, split_words

    budget = settings.max_length - tokenizer.num_special_tokens_to_add(pair=False)
    found = []
    for index, (text, expected, got) in enumerate(zip(texts, reference, spans)):
        expected, got = {tuple(span) for span in expected}, {tuple(span) for span in got}
        if expected == got:
            continue
        causes = set()
        if pipeline is None:
            causes.add("numerics")
        else:
            piped = {_without_leading_space(text, span) for span in (expected if pipeline == "reference" else got)}
            tagger_words = {(word.start, word.end) for word in split_words(text)}
            other_words = [
                word
                for word in (_without_leading_space(text, word) for word in words[index])
                if word not in tagger_words
            ]
            parts = [[word.text for word in part] for part in split_sentences(text)]
            pieces = [
                len(tokenizer(part, is_split_into_words=True, add_special_tokens=False)["input_ids"]) for part in parts
            ]
            normalised = not normalises and any(
                normalise_word(word, settings.normalisation) != word for part in parts for word in part
            )
            argmax = {tuple(span) for span in argmax_spans[index]} if argmax_spans is not None else None
            for span in expected ^ got:
                other_side = got if span in expected else expected
                trimmed = _without_leading_space(text, span)
                if any(trimmed == _without_leading_space(text, other) for other in other_side):
                    causes.add("spaces")  # the same span, but for whitespace at its start
                elif any(_overlap(trimmed[:2], word) for word in other_words):
                    causes.add("words")
                elif len(parts) > 1:
                    causes.add("sentences")
                elif max(pieces, default=0) > budget:
                    causes.add("window")
                elif normalised:
                    causes.add("normalisation")
                elif argmax is not None and (trimmed in argmax) == (trimmed in piped):
                    causes.add("decoding")
                else:
                    causes.add("other")
        ordered = [cause for cause in CAUSES if cause in causes]
        found.append(
            {
                "sentence": index,
                "cause": ordered[0],
                "causes": ordered,
                "only_reference": [(*span, text[span[0] : span[1]]) for span in sorted(expected - got)],
                "only_row": [(*span, text[span[0] : span[1]]) for span in sorted(got - expected)],
            }
        )
    return found


def _without_leading_space(text: str, span: tuple) -> tuple:
    start = span[0]
    while start < span[1] and text[start].isspace():
        start += 1
    return (start, *span[1:])


def raw_text_f1(gold: list, texts: list[str], spans: list[list]) -> float:
    """Entity F1 (seqeval micro, as the eval harness scores) of spans found on the raw text of gold sentences
    (words joined by single spaces): a span tags the gold words it touches, B- on the first, I- on the rest;
    an empty span touches none, and a word already tagged keeps its first span. Scores the pipeline and every
    Tagger row the same way, from what each returns for raw text."""
    from eval.metrics import score_layer

    predicted = []
    for index, (sentence, text, found) in enumerate(zip(gold, texts, spans, strict=True)):
        if text != " ".join(sentence.words):
            raise ValueError(f"text {index} is not its gold words joined by single spaces")
        bounds, start = [], 0
        for word in sentence.words:
            bounds.append((start, start + len(word)))
            start += len(word) + 1
        tags = ["O"] * len(bounds)
        for begin, end, label in sorted(found):
            touched = [
                position
                for position, (first, last) in enumerate(bounds)
                if first < end and begin < last and tags[position] == "O"
            ]
            for order, position in enumerate(touched):
                tags[position] = ("B-" if order == 0 else "I-") + label
        predicted.append(tags)
    return score_layer([list(sentence.tags["entities"]) for sentence in gold], predicted)["micro_f1"]


def _overlap(span: tuple[int, int], word: tuple[int, int]) -> bool:
    """Whether they share a character; an empty span counts as its position's character."""
    return span[0] < max(word[1], word[0] + 1) and word[0] < max(span[1], span[0] + 1)


# ------------------------------------------------------------------------------------------- parent: report


def _summary(found: list[dict]) -> str:
    counts = {cause: sum(1 for item in found if item["cause"] == cause) for cause in CAUSES}
    return ", ".join(f"{cause} {count}" for cause, count in counts.items() if count) or "-"


def report(
    results: dict[str, dict],
    seconds: dict[str, dict[str, list[float]]],
    differences: dict[str, list[dict]],
    same_model: dict[str, list[dict]],
    export_differences: dict[str, list[dict]],
    parity: dict | None,
    checkpoint: Path,
    command: str,
    passes: int,
    load: tuple[float, float],
) -> str:
    base = results[BASELINE]
    rows = []
    for row, result in results.items():
        speed = []
        for part in PARTS:
            if part not in seconds:
                speed += ["-", "-", "-"]
                continue
            rate = result[part]["words"] / statistics.median(seconds[part][row])
            ratios = speed_ratios(seconds[part], row, BASELINE)
            speed += [
                f"{rate:,.0f}",
                f"{statistics.median(ratios):.2f}x",
                f"{min(ratios):.2f}-{max(ratios):.2f}" if row != BASELINE else "-",
            ]
        f1 = result.get("entity_f1")
        exact = same_model.get(row, export_differences.get(row))
        what = ROWS[row] + (f" (here: {result['precision']})" if row == "tagger" else "")
        rows.append(
            [
                row,
                *speed,
                f"{result['peak_rss_mb']:,.0f}",
                f"{100 * result['raw_text_f1']:.2f}",
                f"{100 * f1:.2f}" if f1 is not None else "-",
                len(differences[row]) if row in differences else "-",
                len(exact) if exact is not None else "-",
                what,
            ]
        )
    table = markdown_table(
        [
            "row",
            "ANERcorp words/s",
            "vs pipeline",
            "range",
            "articles words/s",
            "vs pipeline",
            "range",
            "peak RSS MB",
            "F1 raw text",
            "F1 gold words",
            "sentences ≠ pipeline",
            f"sentences ≠ {EXACT}",
            "what",
        ],
        rows,
        right=set(range(1, 12)),
    )
    lines = [
        f"Inference, {checkpoint} ({time.strftime('%Y-%m-%d %H:%M')}): {base['sentences']['texts']} ANERcorp test "
        f"sentences ({base['sentences']['words']:,} words) and {base['articles']['texts']} seed articles "
        f"({base['articles']['words']:,} words). Words/s: the median of {passes} timed passes per row, the rows' "
        "passes interleaved; vs pipeline: the median and range over those rounds of the row's speed over the "
        f"pipeline's in the same round. Load average {load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        f"`{command}`",
        "",
        table,
        "",
        f"Machine: {machine()}.",
        "",
        "Peak RSS: VmHWM of the row's own child process (model, texts and outputs included). "
        "Entity F1, micro, seqeval, ANERcorp test: *raw text* from the spans the row returned for the "
        "sentence text, each span tagging the gold words it touches (the same for every row, the pipeline "
        "included); *gold words* from the Tagger's predict_words on the gold words (what `make eval` scores). "
        "Sentences ≠ pipeline: ANERcorp sentences whose entity spans (start, end, type) differ from the "
        f"pipeline's; ≠ {EXACT}: from the exact Tagger's. The Tagger decodes both layers "
        "of the checkpoint; the pipeline runs the entities layer alone.",
    ]
    if export_differences:
        exact_articles = {
            (index, *span) for index, spans in enumerate(results[EXACT]["article_spans"]) for span in map(tuple, spans)
        }
        export_rows = []
        for row, found in export_differences.items():
            articles = {
                (index, *span)
                for index, spans in enumerate(results[row]["article_spans"])
                for span in map(tuple, spans)
            }
            beyond_spaces = sum(1 for item in found if item["causes"] != ["spaces"])
            export_rows.append(
                [
                    row,
                    len(found),
                    _summary(found),
                    beyond_spaces,
                    f"{100 * results[row]['raw_text_f1']:.2f}",
                    f"{len(articles & exact_articles)} of {len(exact_articles)}",
                    len(articles),
                ]
            )
        lines += [
            "",
            f"The standalone export against the Tagger ({EXACT}): ANERcorp sentences whose entity spans "
            "differ, by first cause, and those that still differ once the spaces at the start of spans are "
            "dropped; and the seed articles' entity spans (whose punctuation is written against the words) "
            "that the pipeline returns exactly as the Tagger.",
            "",
            markdown_table(
                [
                    "row",
                    f"sentences ≠ {EXACT}",
                    "by cause",
                    "≠ but for spaces",
                    "F1 raw text",
                    f"article spans of {EXACT} also found",
                    "article spans found",
                ],
                export_rows,
                right={1, 3, 4, 5, 6},
            ),
        ]
    compute = results.get(EXACT, {}).get("compute")
    if compute:
        lines += [
            "",
            f"Compute on the articles: {EXACT} runs its encoder matmuls at {compute['gflops']:.0f} GFLOPS "
            f"({compute['pieces']:,} pieces x {compute['linear_weights'] / 1e6:.1f}M Linear weights x 2), "
            f"{100 * compute['gflops'] / compute['peak_fp32_gflops']:.0f}% of this CPU's fp32 matmul peak "
            f"({compute['peak_fp32_gflops']:.0f} GFLOPS on one 2048x2048 matmul; bf16 "
            f"{compute['peak_bf16_gflops']:.0f}). On long texts the pipeline also runs long sequences, so "
            "at fp32 neither can be much faster than the other there; the gain on sentences is batching.",
        ]
    if parity is not None:
        worst = max(parity["max_abs_logit_diff"].values())
        verdict = "within" if worst <= 1e-3 else "OVER"
        lines += [
            "",
            f"ONNX parity on {parity['sentences']} real sentences ({parity['windows']} windows, batches of "
            f"32 with padding): max |logit difference| {worst:.2e}, {verdict} the 1e-3 bound "
            f"({', '.join(f'{layer} {value:.2e}' for layer, value in parity['max_abs_logit_diff'].items())}).",
        ]
    # the baseline against the exact Tagger is listed once, as the exact Tagger against the baseline
    others = {row: found for row, found in export_differences.items() if row != BASELINE or EXACT not in differences}
    for title, compared in (("pipeline", differences), (EXACT, {**others, **same_model})):
        for row, found in compared.items():
            if not found:
                continue
            lines += ["", f"{row} against {title}: {len(found)} sentences differ; by (first) cause: {_summary(found)}"]
            for item in found[:10]:
                lines.append(
                    f"- sentence {item['sentence']} ({' + '.join(item['causes'])}): {title} only "
                    f"{item['only_reference']}, {row} only {item['only_row']}"
                )
    used = {
        cause
        for compared in (differences, export_differences, same_model)
        for found in compared.values()
        for item in found
        for cause in item["causes"]
    }
    if used:
        lines += ["", "Causes:"] + [f"- {cause}: {CAUSES[cause]}" for cause in CAUSES if cause in used]
    return "\n".join(lines)


def export(args: list[str]) -> None:
    child = subprocess.run([sys.executable, "-m", "train.export", *args], cwd=ROOT, capture_output=True, text=True)
    raise_user_error(child)
    if child.returncode != 0:
        raise SystemExit(f"python -m train.export {' '.join(args)} failed:\n{child.stderr[-3000:]}")


def with_encoder_tokenizer(standalone: Path, checkpoint: Path, out: Path) -> Path:
    """The standalone export with the checkpoint's own tokenizer.json in place of the export's, as train.export
    wrote it before its tokenizer cut the Tagger's words (and without the card, which describes the export's); the
    weights are linked, not copied."""
    from eval.model_card import CARD_FILE
    from models.checkpoint import TOKENIZER_FILE, WEIGHTS_FILE

    out.mkdir(parents=True, exist_ok=True)
    for path in standalone.iterdir():
        target = out / path.name
        if path.name == CARD_FILE:
            continue
        if path.name == WEIGHTS_FILE:
            target.unlink(missing_ok=True)
            target.symlink_to(path.resolve())
        else:
            shutil.copy(checkpoint / TOKENIZER_FILE if path.name == TOKENIZER_FILE else path, target)
    return out


@reports_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help="tagger checkpoint (default runs/e5-small-offline/model, what `make demo` trains)",
    )
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    parser.add_argument("--limit", type=int, default=None, help="only the first N ANERcorp test sentences")
    parser.add_argument(
        "--passes",
        type=int,
        default=PASSES,
        help=f"timed passes per row over each set of texts, interleaved across rows (default {PASSES})",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the exports (standalone entities model, model.onnx); kept and reused. "
        "Default: a temporary folder",
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)  # child: serve this one row
    parser.add_argument("--standalone", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--onnx-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row == "onnx-parity":
        emit(onnx_parity(args.checkpoint, args.onnx_file, args.limit))
        return 0
    if args.row:
        serve_row(args.row, args.checkpoint, args.standalone, args.onnx_file, args.limit)
        return 0

    checkpoint = check_checkpoint(args.checkpoint)
    rows = [row for row in args.rows.split(",") if row]
    unknown = [row for row in rows if row not in ROWS]
    if unknown or BASELINE not in rows:
        parser.error(f"--rows: unknown {unknown}" if unknown else f"--rows must include {BASELINE} (the baseline)")
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    rows = [row for row in ROWS if row in rows]
    command = command_line("bench.inference", argv)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as temporary:
        work = args.work or Path(temporary)
        standalone, onnx_file = work / "entities", work / "model.onnx"
        # in children: a parent that held the model would be no lighter than the rows it measures
        if not (standalone / "config.json").is_file():
            print(f"exporting the entities layer to {standalone}", file=sys.stderr)
            export(["--checkpoint", str(checkpoint), "--layer", "entities", "--to", str(standalone)])
        exports = {row: standalone for row in rows}
        if ENCODER_TOKENIZER in rows:
            exports[ENCODER_TOKENIZER] = with_encoder_tokenizer(standalone, checkpoint, work / ENCODER_TOKENIZER)
        if "tagger-onnx" in rows and not onnx_file.is_file():
            print(f"exporting to ONNX: {onnx_file}", file=sys.stderr)
            export(["--checkpoint", str(checkpoint), "--onnx", str(onnx_file)])
        common = ["--checkpoint", str(checkpoint), "--onnx-file", str(onnx_file)]
        common += ["--limit", str(args.limit)] if args.limit else []
        children: dict[str, ServingChild] = {}
        try:
            for row in rows:
                started = time.perf_counter()
                children[row] = ServingChild(
                    "bench.inference", ["--row", row, "--standalone", str(exports[row]), *common]
                )
                print(f"  {row}: loaded, untimed pass done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            parts = [part for part in PARTS if children[BASELINE].ready[part]["words"]]  # no articles: sentences only
            seconds = {}
            for part in parts:
                print(f"  {part}: {args.passes} interleaved passes of {len(rows)} rows", file=sys.stderr)
                seconds[part] = interleaved_passes(
                    {row: lambda child=child, part=part: child.ask(part)["seconds"] for row, child in children.items()},
                    args.passes,
                )
            results = {row: {**child.ready, **child.ask("finish")} for row, child in children.items()}
        finally:
            for child in children.values():
                child.close()
        parity = run_child("bench.inference", ["--row", "onnx-parity", *common]) if "tagger-onnx" in rows else None
    load_after = load_average()

    from transformers import AutoTokenizer

    from models.checkpoint import read_info

    tokenizer, settings = AutoTokenizer.from_pretrained(checkpoint), read_info(checkpoint).settings
    gold = anercorp_sentences(args.limit)
    texts = [" ".join(sentence.words) for sentence in gold]
    for result in results.values():
        result["raw_text_f1"] = raw_text_f1(gold, texts, result["spans"])
    argmax_spans = results["tagger-argmax"]["spans"] if "tagger-argmax" in results else None
    base = results[BASELINE]
    differences = {
        row: difference_causes(
            texts,
            base["spans"],
            result["spans"],
            tokenizer,
            settings,
            pipeline="reference",
            words=base["pipeline_words"],
            normalises=True,
            argmax_spans=None if row == "tagger-argmax" else argmax_spans,
        )
        for row, result in results.items()
        if not row.startswith("pipeline")
    }
    export_differences = {
        row: difference_causes(
            texts,
            results[EXACT]["spans"],
            result["spans"],
            tokenizer,
            settings,
            pipeline="spans",
            words=result["pipeline_words"],
            normalises=row != ENCODER_TOKENIZER,
            argmax_spans=argmax_spans,
        )
        for row, result in results.items()
        if row.startswith("pipeline") and EXACT in results
    }
    same_model = {
        row: difference_causes(texts, results[plain]["spans"], results[row]["spans"], tokenizer, settings)
        for row, plain in SAME_MODEL.items()
        if row in results and plain in results
    }
    text = report(
        results,
        seconds,
        differences,
        same_model,
        export_differences,
        parity,
        checkpoint,
        command,
        args.passes,
        (load_before, load_after),
    )
    print(text)
    data = {
        "results": {
            row: {
                key: value for key, value in result.items() if key not in ("spans", "article_spans", "pipeline_words")
            }
            for row, result in results.items()
        },
        "seconds": seconds,
        "passes": args.passes,
        "load_average": [load_before, load_after],
        "differences": differences,
        "differences_from_tagger": {**export_differences, **same_model},
        "onnx_parity": parity,
        "machine": machine(),
        "command": command,
    }
    print(f"\nwritten: {write_result('inference', text, data)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
