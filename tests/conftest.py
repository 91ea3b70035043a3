"""Shared fixtures: a tiny synthetic corpus laid out like ../shared/data, and a tiny trained checkpoint."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

# No Hub on these machines: fail at once instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

PEOPLE = [["محمد"], ["أحمد", "علي"], ["بشار", "الأسد"], ["جورج", "بوش"]]
PLACES = [["دمشق"], ["دير", "الزور"], ["بغداد"], ["القاهرة"], ["ألمانيا"]]
ORGS = [["الأمم", "المتحدة"], ["اتحاد", "صناعة", "السيارات"], ["الجيش", "السوري"]]
MISC = [["الحرب", "العالمية"], ["كأس", "العالم"]]
TRIGGERS = {"هجوم": "Conflict.Attack", "قتل": "Life.Die", "وصل": "Movement.Transport", "اجتماع": "Contact.Meet"}
FILLER = list(TRIGGERS) + [
    "أعلن",
    "أن",
    "في",
    "على",
    "من",
    "القوات",
    "استعادت",
    "السيطرة",
    "مدينة",
    "وقال",
    "اليوم",
    "،",
    ".",
    "(",
    ")",
]


def synthetic_sentences(count: int, seed: int, long_every: int = 0) -> list[list[tuple[str, str]]]:
    """Random sentences of filler words and named entities, IOB2 tagged; some written IOB1, some long."""
    rng = random.Random(seed)
    sentences = []
    for index in range(count):
        words: list[tuple[str, str]] = []
        length = 60 if long_every and index % long_every == 0 else rng.randint(4, 14)
        while len(words) < length:
            if rng.random() < 0.3:
                kind, pool = rng.choice([("PERS", PEOPLE), ("LOC", PLACES), ("ORG", ORGS), ("MISC", MISC)])
                name = rng.choice(pool)
                first = "I" if rng.random() < 0.1 else "B"  # IOB1-style chunk starts, to be repaired
                words += [(word, f"{first if i == 0 else 'I'}-{kind}") for i, word in enumerate(name)]
            else:
                words.append((rng.choice(FILLER), "O"))
        if index % 7 == 3:
            words.insert(1, ("ّ", "O"))  # a lone shadda: zero pieces for most tokenizers
        sentences.append(words)
    return sentences


def tiny_tokenizer(words: list[str], vocab_size: int = 300):
    """The fast WordPiece tokenizer of the tiny:bert test encoder, built from `words`."""
    from train.encoders import tiny_encoder

    return tiny_encoder({"vocab_size": vocab_size}, words)[1]


def tokenizer_json_to_vocab_txt(folder: Path) -> None:
    """Leave a checkpoint folder as AraBERT's are: a vocab.txt and a BertTokenizer class, no tokenizer.json.
    From those, transformers would silently build a tokenizer with its own defaults (lower-casing, accent
    stripping); the loaders must refuse instead."""
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = sorted(tokenizer["model"]["vocab"], key=tokenizer["model"]["vocab"].get)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, "tokenizer_class": "BertTokenizer"}), encoding="utf-8"
    )


def run_make(*arguments: str, data_root: Path, timeout: int = 1200):
    """`make ARGUMENTS` in the repository with this interpreter's environment (VENV); -o keeps make from
    installing into that environment (`setup`)."""
    import subprocess
    import sys

    venv = Path(sys.executable).parent.parent
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(root),
        "ARABIC_NEWS_DATA": str(data_root),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed", *arguments],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_conll(path: Path, sentences: list[list[tuple[str, ...]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n\n".join("\n".join(" ".join(row) for row in sentence) for sentence in sentences), encoding="utf-8"
    )


def with_events(sentences: list[list[tuple[str, str]]]) -> list[list[tuple[str, str, str]]]:
    """Adds an event column: trigger words get B-<subtype>, everything else O (entities untouched)."""
    return [[(word, tag, f"B-{TRIGGERS[word]}" if word in TRIGGERS else "O") for word, tag in s] for s in sentences]


def synthetic_arguments(sentences: list[list[tuple[str, str, str]]]) -> list[dict]:
    """Arguments file records (the real format) for `with_events` sentences, by rules a model can learn:
    the nearest PERS/ORG before a trigger is its Agent, and so is the sentence's first PERS (a long-range link:
    in the 60-word sentences it crosses encoder windows); the nearest PERS/ORG/MISC after it is its Patient;
    a LOC at most 3 words away is its Place. Listed, as in the real files: every sentence with a trigger and an
    entity."""
    from models.labels import chunks, to_iob2

    records = []
    for index, sentence in enumerate(sentences):
        words = [row[0] for row in sentence]
        entities = chunks(to_iob2([row[1] for row in sentence])[0])  # the spans the reader will see
        triggers = chunks([row[2] for row in sentence])
        if not entities or not triggers:
            continue
        first_person = next(((f, e) for f, e, kind in entities if kind == "PERS"), None)
        arguments = {}
        for t_first, t_end, _ in triggers:
            before = [(f, e) for f, e, kind in entities if e <= t_first and kind in ("PERS", "ORG")]
            after = [(f, e) for f, e, kind in entities if f >= t_end and kind in ("PERS", "ORG", "MISC")]
            links = [(span, "Agent") for span in before[-1:]]
            if first_person and first_person[1] <= t_first:
                links.append((first_person, "Agent"))
            links += [(span, "Patient") for span in after[:1]]
            links += [
                ((f, e), "Place")
                for f, e, kind in entities
                if kind == "LOC" and (t_first - e <= 3 if e <= t_first else f - t_end <= 3)
            ]
            for entity, role in links:
                arguments[(t_first, t_end), entity] = role  # one link per pair; the Agent rules may agree
        records.append(
            {
                "sentence": index,
                "arguments": [
                    {
                        "trigger": list(trigger),
                        "trigger_text": " ".join(words[trigger[0] : trigger[1]]),
                        "entity": list(entity),
                        "entity_text": " ".join(words[entity[0] : entity[1]]),
                        "role": role,
                    }
                    for (trigger, entity), role in arguments.items()
                ],
            }
        )
    return records


def write_arguments(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")


def aqmar_style(sentences: list[list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """AQMAR writes PER and MIS where ANERcorp writes PERS and MISC."""
    rename = {"PERS": "PER", "MISC": "MIS"}
    return [
        [(word, tag[:2] + rename.get(tag[2:], tag[2:]) if tag != "O" else tag) for word, tag in s] for s in sentences
    ]


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """Synthetic corpora laid out like ../shared/data: anercorp-camellab, anercorp-events (with arguments),
    aqmar-liu2019 and aqmar-events."""
    root = tmp_path_factory.mktemp("data")
    train, test = synthetic_sentences(120, seed=1, long_every=40), synthetic_sentences(30, seed=2, long_every=15)
    write_conll(root / "anercorp-camellab" / "ANERCorp_CamelLab_train.txt", train)
    write_conll(root / "anercorp-camellab" / "ANERCorp_CamelLab_test.txt", test)
    for split, sentences in (("train", with_events(train)), ("test", with_events(test))):
        write_conll(root / "anercorp-events" / f"{split}.txt", sentences)
        write_arguments(root / "anercorp-events" / f"{split}.args.jsonl", synthetic_arguments(sentences))
    for split, seed in (("train", 3), ("dev", 4), ("test", 5)):
        aqmar = aqmar_style(synthetic_sentences(40, seed=seed))
        write_conll(root / "aqmar-liu2019" / f"{split}.txt", aqmar)
        write_conll(root / "aqmar-events" / f"{split}.txt", with_events(aqmar))
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_data_root, tmp_path_factory) -> Path:
    """A few-step training run of configs/tiny.yaml on the synthetic corpus; returns its run folder."""
    from train.config import load_config
    from train.run import run

    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        Path(__file__).parents[1] / "configs" / "tiny.yaml",
        [f"data_root={tiny_data_root}", f"output_dir={out}", "training.epochs=3"],
    )
    run(config)
    return out / "tiny"


@pytest.fixture(scope="session")
def real_root() -> Path:
    """../shared/data (or $ARABIC_NEWS_DATA); tests of the real corpora skip where it is absent."""
    from corpora.reader import data_root

    try:
        return data_root()
    except FileNotFoundError as err:
        pytest.skip(f"real corpora not available (../shared/data or $ARABIC_NEWS_DATA): {err}")
