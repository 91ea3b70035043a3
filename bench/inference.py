"""Inference speed: the Tagger against transformers.pipeline("token-classification", aggregation_strategy="first",
or "average" for a word_pooling mean checkpoint) on the same checkpoint (its entities layer exported
standalone) and the same texts, side by side in one run.

    python -m bench.inference --checkpoint runs/e5-small-joint/model
    python -m bench.inference --limit 100 --rows pipeline,tagger-argmax     # a quick look

Texts: every ANERcorp test sentence as raw text (its words joined by spaces, one text each) and the seed
news articles. Words are whitespace-separated tokens, counted the same way for every row. The pipeline is
given stride=32 so that it tags the whole of an article longer than its 512 pieces instead of silently
truncating it. Every row runs in a child process of its own (peak RSS = that child's VmHWM, model
included); timings are the best of REPEATS passes, after one warm-up batch and one untimed pass. The exports
run in child processes too (python -m train.export).

Span parity: on every ANERcorp sentence the entity spans (start, end, type) of each Tagger row are compared
with the pipeline's, and each sentence that differs is put down to a cause (see CAUSES).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench.common import (
    DEFAULT_CHECKPOINT,
    ROOT,
    check_checkpoint,
    command_line,
    emit,
    machine,
    markdown_table,
    raise_user_error,
    run_child,
    write_result,
)
from models.errors import reports_user_errors

PIPELINE_STRIDE = 32
REPEATS = 3  # timed passes over the same texts per row; the best is reported
# row -> what it runs; the first is the baseline of every ratio
ROWS = {
    "pipeline": "transformers pipeline, default batch (1 text at a time)",
    "pipeline-batch32": "transformers pipeline, batch_size=32",
    "tagger": "Tagger as loaded by default: viterbi, precision auto",
    "tagger-fp32": "Tagger, viterbi, fp32 (exact on every machine)",
    "tagger-argmax": "Tagger, argmax, fp32 (like for like with the pipeline)",
    "tagger-bf16": "Tagger, viterbi, bf16 matmuls (autocast)",
    "tagger-int8": "Tagger, viterbi, int8 dynamic quantisation of every nn.Linear",
    "tagger-onnx": "Tagger, viterbi, on onnxruntime",
}
BASELINE = "pipeline"
# why a sentence's spans differ from the pipeline's, checked in this order (the first that applies is counted)
CAUSES = {
    "words": "the pipeline cuts this part of the text into other words than the Tagger: its heuristic (a new word "
    "only after a space) keeps punctuation on a word (`كابول؛`), and takes the lone `▁` piece that this "
    "sentencepiece tokenizer puts before some words for a word of its own (may tag it: an empty span, or "
    "a span ending in a space) and labels the real word by its second piece. The Tagger splits punctuation "
    "off and labels each word by its first piece, as in training",
    "sentences": "the Tagger splits the text into several sentences (a `.` `?` `!` inside it), so each part is "
    "encoded without the other's context",
    "window": "a sentence is longer than the Tagger's window (max_length pieces), so it is encoded in "
    "overlapping windows; the pipeline sees up to 512 pieces at once",
    "normalisation": "the Tagger normalises a word of the sentence (tashkeel, tatweel, presentation forms), "
    "so the encoder sees other pieces",
    "decoding": "viterbi decoding (the Tagger with argmax agrees with the pipeline on this span)",
    "numerics": "the same Tagger computed another way (int8, bf16, onnxruntime): the logits differ a little and "
    "tip close calls",
    "other": "none of the above: numerical (other padding in a batch, other kernels) or unexplained",
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


def pipeline_spans(text: str, entities: list[dict]) -> list[tuple[int, int, str]]:
    """(start, end, type) of the pipeline's entities. Its offsets of a sentencepiece `▁word` piece include the
    space before the word; that space is the only thing dropped here."""
    spans = []
    for entity in entities:
        start, end = entity["start"], entity["end"]
        while start < end and text[start].isspace():
            start += 1
        spans.append((start, end, entity["entity_group"]))
    return spans


def measure_row(row: str, checkpoint: Path, standalone: Path, onnx_file: Path, limit: int | None) -> dict:
    import torch

    from bench.common import peak_rss_mb

    gold = anercorp_sentences(limit)
    sentences = [" ".join(sentence.words) for sentence in gold]
    articles = article_texts()
    if row.startswith("pipeline"):
        from transformers import pipeline

        from train.export import pipeline_aggregation

        warnings.simplefilter("ignore")  # "Tokenizer does not support real words": once per piece, by design
        pipe = pipeline(
            "token-classification",
            model=str(standalone),
            device="cpu",
            aggregation_strategy=pipeline_aggregation(checkpoint),
        )
        batch_size = 32 if row == "pipeline-batch32" else None

        def tag(texts: list[str]) -> list[list[tuple[int, int, str]]]:
            outputs = (
                pipe(texts, batch_size=batch_size, stride=PIPELINE_STRIDE)
                if batch_size
                else pipe(texts, stride=PIPELINE_STRIDE)
            )
            return [pipeline_spans(text, entities) for text, entities in zip(texts, outputs)]

        tagger = None
    else:
        tagger = load_tagger(row, checkpoint, onnx_file)

        def tag(texts: list[str]) -> list[list[tuple[int, int, str]]]:
            return [[(span.start, span.end, span.label) for span in doc.entities] for doc in tagger.tag(texts)]

    tag(sentences[:32])  # warm-up: first-call allocations and lazy initialisation are not what we measure
    spans = tag(sentences)  # the passes below return the same spans

    def best_seconds(texts: list[str]) -> float:
        """Best of REPEATS passes: this shared machine's noise only ever adds time (one pass varied by 20%)."""
        seconds = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            tag(texts)
            seconds.append(time.perf_counter() - started)
        return min(seconds)

    result = {
        "row": row,
        "threads": torch.get_num_threads(),
        "repeats": REPEATS,
        "sentences": {"texts": len(sentences), "words": count_words(sentences), "seconds": best_seconds(sentences)},
        "articles": {"texts": len(articles), "words": count_words(articles), "seconds": best_seconds(articles)},
        "spans": spans,
    }
    if tagger is not None:
        from eval.harness import evaluate

        report = evaluate(tagger, gold, "anercorp:test")
        result["entity_f1"] = report["layers"]["entities"]["micro_f1"]
        result["precision"] = tagger.precision
    if row == EXACT:
        result["compute"] = compute_use(tagger, articles, result["articles"]["seconds"])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


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
    argmax_spans: list[list] | None = None,
    same_tagger: bool = False,
) -> list[dict]:
    """Each sentence whose spans differ from the reference's, with the causes (from CAUSES) of its differing
    spans; the sentence is counted under the first. argmax_spans: the argmax Tagger's, to tell viterbi's repairs
    apart. same_tagger: both sides are the Tagger, so only numerics can differ."""
    from models.text import normalise_word, split_sentences, split_words

    budget = settings.max_length - tokenizer.num_special_tokens_to_add(pair=False)
    found = []
    for index, (text, expected, got) in enumerate(zip(texts, reference, spans)):
        expected, got = {tuple(span) for span in expected}, {tuple(span) for span in got}
        if expected == got:
            continue
        causes = {"numerics"} if same_tagger else set()
        if not same_tagger:
            tagger_words = {(word.start, word.end) for word in split_words(text)}
            other_words = [word for word in pipeline_words(text, tokenizer) if word not in tagger_words]
            parts = [[word.text for word in part] for part in split_sentences(text)]
            pieces = [
                len(tokenizer(part, is_split_into_words=True, add_special_tokens=False)["input_ids"]) for part in parts
            ]
            normalised = any(normalise_word(word, settings.normalisation) != word for part in parts for word in part)
            argmax = {tuple(span) for span in argmax_spans[index]} if argmax_spans is not None else None
            for span in expected ^ got:
                if any(_overlap(span[:2], word) for word in other_words):
                    causes.add("words")
                elif len(parts) > 1:
                    causes.add("sentences")
                elif max(pieces, default=0) > budget:
                    causes.add("window")
                elif normalised:
                    causes.add("normalisation")
                elif argmax is not None and (span in argmax) == (span in expected):
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


def pipeline_words(text: str, tokenizer) -> list[tuple[int, int]]:
    """The words the pipeline's aggregation sees (its fallback heuristic for tokenizers without word ids:
    a piece starts a word when a space touches its start), as (start, end) with leading spaces dropped."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    words: list[list[int]] = []
    for piece, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        continues = start > 0 and " " not in text[start - 1 : start + 1] and piece != tokenizer.unk_token_id
        if words and continues:
            words[-1][1] = end
        else:
            words.append([start, end])
    spans = []
    for start, end in words:
        while start < end and text[start].isspace():
            start += 1
        spans.append((start, end))
    return spans


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


def report(
    results: dict[str, dict],
    differences: dict[str, list[dict]],
    same_model: dict[str, list[dict]],
    parity: dict | None,
    checkpoint: Path,
    command: str,
) -> str:
    base = results[BASELINE]
    rate = {
        row: {part: result[part]["words"] / result[part]["seconds"] for part in ("sentences", "articles")}
        for row, result in results.items()
    }
    rows = []
    for row, result in results.items():
        f1 = result.get("entity_f1")
        speed = [
            cell
            for part in ("sentences", "articles")
            for cell in (f"{rate[row][part]:,.0f}", f"{rate[row][part] / rate[BASELINE][part]:.2f}x")
        ]
        what = ROWS[row] + (f" (here: {result['precision']})" if row == "tagger" else "")
        rows.append(
            [
                row,
                *speed,
                f"{result['peak_rss_mb']:,.0f}",
                f"{100 * result['raw_text_f1']:.2f}",
                f"{100 * f1:.2f}" if f1 is not None else "-",
                len(differences[row]) if row in differences else "-",
                len(same_model[row]) if row in same_model else "-",
                what,
            ]
        )
    table = markdown_table(
        [
            "row",
            "ANERcorp words/s",
            "vs pipeline",
            "articles words/s",
            "vs pipeline",
            "peak RSS MB",
            "F1 raw text",
            "F1 gold words",
            "sentences ≠ pipeline",
            f"sentences ≠ {EXACT}",
            "what",
        ],
        rows,
        right={1, 2, 3, 4, 5, 6, 7, 8, 9},
    )
    lines = [
        f"Inference, {checkpoint} ({time.strftime('%Y-%m-%d %H:%M')}): {base['sentences']['texts']} ANERcorp test "
        f"sentences ({base['sentences']['words']:,} words) and {base['articles']['texts']} seed articles "
        f"({base['articles']['words']:,} words); words/s from the best of {REPEATS} timed passes per row.",
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
    compute = results.get(EXACT, {}).get("compute")
    if compute:
        lines.append(
            f"Compute on the articles: {EXACT} runs its encoder matmuls at {compute['gflops']:.0f} GFLOPS "
            f"({compute['pieces']:,} pieces x {compute['linear_weights'] / 1e6:.1f}M Linear weights x 2), "
            f"{100 * compute['gflops'] / compute['peak_fp32_gflops']:.0f}% of this CPU's fp32 matmul peak "
            f"({compute['peak_fp32_gflops']:.0f} GFLOPS on one 2048x2048 matmul; bf16 "
            f"{compute['peak_bf16_gflops']:.0f}). On long texts the pipeline also runs long sequences, so "
            "at fp32 neither can be much faster than the other there; the gain on sentences is batching."
        )
    if parity is not None:
        worst = max(parity["max_abs_logit_diff"].values())
        verdict = "within" if worst <= 1e-3 else "OVER"
        lines.append(
            f"ONNX parity on {parity['sentences']} real sentences ({parity['windows']} windows, batches of 32 "
            f"with padding): max |logit difference| {worst:.2e}, {verdict} the 1e-3 bound "
            f"({', '.join(f'{layer} {value:.2e}' for layer, value in parity['max_abs_logit_diff'].items())})."
        )
    for title, compared in (("pipeline", differences), (EXACT, same_model)):
        for row, found in compared.items():
            if not found:
                continue
            counts = {cause: sum(1 for item in found if item["cause"] == cause) for cause in CAUSES}
            lines += [
                "",
                f"{row} against {title}: {len(found)} sentences differ; by (first) cause: "
                + ", ".join(f"{cause} {count}" for cause, count in counts.items() if count),
            ]
            for item in found[:10]:
                lines.append(
                    f"- sentence {item['sentence']} ({' + '.join(item['causes'])}): {title} only "
                    f"{item['only_reference']}, "
                    f"{row} only {item['only_row']}"
                )
    used = {
        cause
        for compared in (differences, same_model)
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
        "--work",
        type=Path,
        default=None,
        help="folder for the exports (standalone entities model, model.onnx); kept and reused. "
        "Default: a temporary folder",
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)  # child: measure this one row
    parser.add_argument("--standalone", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--onnx-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row == "onnx-parity":
        emit(onnx_parity(args.checkpoint, args.onnx_file, args.limit))
        return 0
    if args.row:
        emit(measure_row(args.row, args.checkpoint, args.standalone, args.onnx_file, args.limit))
        return 0

    checkpoint = check_checkpoint(args.checkpoint)
    rows = [row for row in args.rows.split(",") if row]
    unknown = [row for row in rows if row not in ROWS]
    if unknown or BASELINE not in rows:
        parser.error(f"--rows: unknown {unknown}" if unknown else f"--rows must include {BASELINE} (the baseline)")
    rows = [row for row in ROWS if row in rows]
    command = command_line("bench.inference", argv)
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as temporary:
        work = args.work or Path(temporary)
        standalone, onnx_file = work / "entities", work / "model.onnx"
        # in children: a parent that held the model would be no lighter than the rows it measures
        if not (standalone / "config.json").is_file():
            print(f"exporting the entities layer to {standalone}", file=sys.stderr)
            export(["--checkpoint", str(checkpoint), "--layer", "entities", "--to", str(standalone)])
        if "tagger-onnx" in rows and not onnx_file.is_file():
            print(f"exporting to ONNX: {onnx_file}", file=sys.stderr)
            export(["--checkpoint", str(checkpoint), "--onnx", str(onnx_file)])
        common = ["--checkpoint", str(checkpoint), "--standalone", str(standalone), "--onnx-file", str(onnx_file)]
        common += ["--limit", str(args.limit)] if args.limit else []
        results = {row: run_child("bench.inference", ["--row", row, *common]) for row in rows}
        parity = run_child("bench.inference", ["--row", "onnx-parity", *common]) if "tagger-onnx" in rows else None

    from transformers import AutoTokenizer

    from models.checkpoint import read_info

    tokenizer, settings = AutoTokenizer.from_pretrained(checkpoint), read_info(checkpoint).settings
    gold = anercorp_sentences(args.limit)
    texts = [" ".join(sentence.words) for sentence in gold]
    for result in results.values():
        result["raw_text_f1"] = raw_text_f1(gold, texts, result["spans"])
    argmax_spans = results["tagger-argmax"]["spans"] if "tagger-argmax" in results else None
    differences = {
        row: difference_causes(
            texts,
            results[BASELINE]["spans"],
            result["spans"],
            tokenizer,
            settings,
            None if row == "tagger-argmax" else argmax_spans,
        )
        for row, result in results.items()
        if row != BASELINE
    }
    same_model = {
        row: difference_causes(
            texts, results[plain]["spans"], results[row]["spans"], tokenizer, settings, same_tagger=True
        )
        for row, plain in SAME_MODEL.items()
        if row in results and plain in results
    }
    text = report(results, differences, same_model, parity, checkpoint, command)
    print(text)
    data = {
        "results": {
            row: {key: value for key, value in result.items() if key != "spans"} for row, result in results.items()
        },
        "differences": differences,
        "differences_from_tagger": same_model,
        "onnx_parity": parity,
        "machine": machine(),
        "command": command,
    }
    print(f"\nwritten: {write_result('inference', text, data)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
