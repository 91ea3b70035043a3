"""The HTTP service (models/serve.py) on a real uvicorn over loopback: the same records as the Tagger, its error
codes, bad input, concurrent requests batched together, and a failing request alone in its batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service is the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the service tests need httpx (the dev extra)")

from test_argument_outputs import TEXTS as ROLE_TEXTS  # noqa: E402,F401
from test_argument_outputs import roles_checkpoint  # noqa: E402,F401 - a fixture
from test_bad_input import BAD_INPUTS  # noqa: E402
from test_distributed import free_port  # noqa: E402

from models import Tagger  # noqa: E402 - after the skips: without the serve extra nothing here is collected
from models.records import doc_record  # noqa: E402
from models.serve import Limits, create_app, listening_socket, main  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
TEXTS = [
    "أعلن محمد في دمشق أن القوات استعادت السيطرة على مدينة دير الزور.\nوقال أحمد علي في بغداد",
    "وصل جورج بوش إلى القاهرة اليوم",
    "اجتماع الأمم المتحدة في ألمانيا",
    "",
    "هجوم على الجيش السوري في دمشق",
]
MAX_TEXTS = 8


def wait_until_healthy(base: str, process: subprocess.Popen | None = None, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before it was healthy")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/health did not answer 200 within {seconds} s")


@pytest.fixture(scope="module")
def server(tiny_run: Path, tmp_path_factory) -> str:
    """`python -m models.serve` on the tiny checkpoint, on a free loopback port; its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "models.serve",
                "--checkpoint",
                str(tiny_run / "model"),
                "--port",
                str(port),
                "--precision",
                "fp32",
                "--max-texts",
                str(MAX_TEXTS),
                "--max-wait-ms",
                "20",
                "--no-access-log",
            ],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield base
    finally:
        process.terminate()
        code = process.wait(timeout=60)
    # uvicorn shuts down, then re-raises the SIGTERM it caught, as a process killed by it should end
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log.read_text(), (
        f"the server did not shut down cleanly ({code}):\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def tagger(tiny_run: Path) -> Tagger:
    return Tagger.load(tiny_run / "model", device="cpu", precision="fp32")


def expected(tagger: Tagger, texts: list[str]) -> list[dict]:
    return [doc_record(doc, list(tagger.layers), bool(tagger.roles)) for doc in tagger.tag(texts)]


def same_spans(got, want, tolerance: float = 1e-3) -> bool:
    """Equal JSON values, each float (a score) within tolerance: texts batched with other texts are padded
    otherwise, which moves the last digits of a probability."""
    if isinstance(want, float):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and abs(got - want) <= tolerance
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same_spans(got[key], want[key], tolerance) for key in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same_spans(one, other, tolerance) for one, other in zip(got, want))
        )
    return type(got) is type(want) and got == want


def post(base: str, payload, **kwargs) -> httpx.Response:
    return httpx.post(f"{base}/tag", json=payload, timeout=120, **kwargs)


# --- the service against the Tagger ------------------------------------------------------------------------


def test_records_are_the_taggers(server: str, tagger: Tagger):
    response = post(server, {"texts": TEXTS})
    assert response.status_code == 200, response.text
    assert response.json() == {"results": expected(tagger, TEXTS)}  # one request, one batch: the same numbers
    one = post(server, {"text": TEXTS[0]})
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert same_spans(one.json(), expected(tagger, TEXTS[:1])[0])
    assert list(one.json()) == ["text", "entities"]  # the tiny checkpoint's one layer, no arguments


def test_health_and_info(server: str, tiny_run: Path):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    info = httpx.get(f"{server}/info").json()
    recorded = json.loads((tiny_run / "model" / "tagger.json").read_text(encoding="utf-8"))["provenance"]
    assert info["layers"] == ["entities"] and info["labels"] == {"entities": ["PERS", "LOC", "ORG", "MISC"]}
    assert info["encoder"] == recorded["encoder"] and info["precision"] == "fp32"
    assert info["f1"]["test"]["entities"] == recorded["metrics"]["test"]["entities"]["micro_f1"]
    assert info["limits"]["max_texts"] == MAX_TEXTS


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b'{"texts": ["a",', 422, "body"),
        (b"not json", 422, "body"),
        (b'{"text": "\xff\xfe"}', 422, "body"),
        (b"[" * 100_000, 422, "body"),
        (b'["a"]', 422, "body"),
        (b"{}", 422, "text"),
        (b'{"txt": "a"}', 422, "txt"),
        (b'{"text": 5}', 422, "text"),
        (b'{"text": null}', 422, "text"),
        (b'{"text": ["a"]}', 422, "text"),
        (b'{"texts": "a"}', 422, "texts"),
        (b'{"texts": ["a", 3]}', 422, "texts[1]"),
        (b'{"text": "a", "texts": ["b"]}', 422, "texts"),
        (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}).encode(), 413, "texts"),
        (json.dumps({"text": "a" * 100_001}).encode(), 413, "text"),
        (json.dumps({"texts": ["a", "a" * 100_001]}).encode(), 413, "texts[1]"),
    ],
    ids=[
        "truncated",
        "not-json",
        "not-utf8",
        "nested",
        "array",
        "empty",
        "unknown-field",
        "number",
        "null",
        "list-as-text",
        "string-as-texts",
        "number-in-texts",
        "both",
        "too-many",
        "too-long",
        "too-long-in-texts",
    ],
)
def test_errors_are_json_naming_the_field(server: str, body: bytes, status: int, field: str):
    response = httpx.post(f"{server}/tag", content=body, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field and isinstance(error["error"], str) and error["error"]


def test_a_body_longer_than_any_acceptable_request_is_refused_unread(server: str):
    limit = Limits(max_texts=MAX_TEXTS).max_body_bytes
    response = httpx.post(f"{server}/tag", content=b" " * (limit + 1), timeout=60)
    assert response.status_code == 413 and response.json()["field"] == "body"
    chunks = iter([b" " * (limit // 2)] * 3)  # no content-length: the stream is cut at the limit
    response = httpx.post(f"{server}/tag", content=chunks, timeout=60)
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_unknown_paths_and_methods_answer_json(server: str):
    assert httpx.get(f"{server}/nope").json() == {"error": "Not Found"}
    assert httpx.get(f"{server}/tag").status_code == 405


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_tagged_not_a_500(server: str, tagger: Tagger, name: str):
    text = BAD_INPUTS[name]
    # escaped JSON: the only way to send lone surrogates (UTF-8 cannot carry them)
    response = httpx.post(
        f"{server}/tag", content=json.dumps({"text": text}), timeout=120, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["text"] == text
    assert all(text[span["start"] : span["end"]] == span["text"] for span in record["entities"])
    assert same_spans(record, expected(tagger, [text])[0])


def test_a_100000_character_text_is_tagged_in_full(server: str, tagger: Tagger):
    text = " ".join(["أعلن", "محمد", "في", "دمشق", "أن", "القوات"] * 5000)[:100_000]
    response = post(server, {"text": text})
    assert response.status_code == 200
    assert same_spans(response.json(), expected(tagger, [text])[0])


# --- concurrency -------------------------------------------------------------------------------------------


async def many(base: str, payloads: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(payloads))
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        return await asyncio.gather(*(client.post("/tag", json=payload) for payload in payloads))


def test_100_concurrent_requests_are_batched_and_answered_right(server: str, tagger: Tagger):
    before = httpx.get(f"{server}/info").json()["served"]
    # every request different: a reply sent to the wrong request shows
    payloads = [
        {"text": f"{TEXTS[index % len(TEXTS)]} {index}"}
        if index % 3
        else {"texts": [f"{text} {index}" for text in TEXTS[: 1 + index % 4]]}
        for index in range(100)
    ]
    responses = asyncio.run(many(server, payloads))
    assert [response.status_code for response in responses] == [200] * 100
    for payload, response in zip(payloads, responses):
        if "text" in payload:
            assert same_spans(response.json(), expected(tagger, [payload["text"]])[0])
        else:
            got = response.json()["results"]
            assert len(got) == len(payload["texts"])
            assert all(same_spans(one, want) for one, want in zip(got, expected(tagger, payload["texts"])))
    served = httpx.get(f"{server}/info").json()["served"]
    batches = served["batches"] - before["batches"]
    assert served["requests"] - before["requests"] == 100
    print(f"100 concurrent requests: {batches} Tagger calls, largest {served['largest_batch']} texts")
    assert batches <= 50, f"100 concurrent requests took {batches} Tagger calls: they were not batched"
    assert served["largest_batch"] > 1


# --- in-process: a failing request, arguments -------------------------------------------------------------


class Serving:
    """An app on a real uvicorn in a thread of this process, so the test can reach the tagger."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until_healthy(self.base, seconds=60)
        return self.base

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


class FailsOn(Tagger):
    """The tiny tagger, raising on any call that includes the text POISON; records each call's texts."""

    POISON = "يفشل"

    def __init__(self, tagger: Tagger):
        self.__dict__.update(tagger.__dict__)
        self.calls: list[list[str]] = []

    def tag(self, texts):
        self.calls.append(list(texts))
        if self.POISON in texts:
            raise RuntimeError("poisoned")
        return super().tag(texts)


def test_a_failing_request_fails_alone(tagger: Tagger):
    failing = FailsOn(tagger)
    good = [f"{text} {index}" for index, text in enumerate(TEXTS * 2)]
    with Serving(create_app(failing, Limits(max_batch=64, max_wait_ms=500))) as base:
        payloads = [{"text": text} for text in good]
        payloads.insert(5, {"text": FailsOn.POISON})
        responses = asyncio.run(many(base, payloads))
        assert httpx.get(f"{base}/health").status_code == 200, "the worker survives"
        info = httpx.get(f"{base}/info").json()["served"]
    poisoned = responses.pop(5)
    assert poisoned.status_code == 500 and "poisoned" in poisoned.json()["error"]
    assert [response.status_code for response in responses] == [200] * len(good)
    for text, response in zip(good, responses):
        assert same_spans(response.json(), expected(tagger, [text])[0])
    shared = [call for call in failing.calls if FailsOn.POISON in call and len(call) > 1]
    assert shared, "the failing request shared a batch with others (else this test shows nothing)"
    assert info["failed"] == 1 and info["requests"] == len(good)


class ReturnsNothing(FailsOn):
    """A tagger that breaks its contract: what the service does with a bug of its own."""

    def tag(self, texts):
        return [None] * len(texts)


def test_an_internal_error_is_a_json_500(tagger: Tagger):
    with Serving(create_app(ReturnsNothing(tagger))) as base:
        response = post(base, {"text": TEXTS[0]})
        assert httpx.get(f"{base}/health").status_code == 200
    assert response.status_code == 500 and response.json()["error"].startswith("internal error: AttributeError")


def test_arguments_come_back_with_their_spans(roles_checkpoint: Path):  # noqa: F811 - the fixture
    tagger = Tagger.load(roles_checkpoint, device="cpu", precision="fp32")
    want = expected(tagger, ROLE_TEXTS)
    assert any(record["arguments"] for record in want), "the fixture links something"
    with Serving(create_app(tagger)) as base:
        response = post(base, {"texts": ROLE_TEXTS})
        info = httpx.get(f"{base}/info").json()
    assert response.json() == {"results": want}
    assert list(want[0]) == ["text", "entities", "events", "arguments"]
    assert info["roles"] == ["Agent", "Patient", "Place"] and info["f1"] is None  # built, never evaluated


# --- the command line --------------------------------------------------------------------------------------


def test_user_errors_are_one_line_and_exit_2(tiny_run: Path, capsys):
    assert main(["--checkpoint", str(tiny_run / "modle"), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["--checkpoint", str(tiny_run / "model"), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot listen on 127.0.0.1:") and err.count("\n") == 1
    assert main(["--checkpoint", str(tiny_run / "model"), "--port", "0", "--max-batch", "0"]) == 2
    assert "max_batch must be a positive integer" in capsys.readouterr().err
    assert main(["--checkpoint", str(tiny_run / "model"), "--port", "0", "--workers", "0"]) == 2
    assert "workers must be a positive integer" in capsys.readouterr().err


def test_connections_to_the_service_send_without_waiting_for_acks():
    """Nagle's algorithm on the served socket held each response back until the client's delayed ACK (45 ms)."""
    import socket

    with listening_socket("127.0.0.1", 0) as listener:
        listener.listen()
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), "TCP_NODELAY is not set"


class NamesThreads(FailsOn):
    """The tiny tagger, recording which thread made each call (the replicas share the list)."""

    def tag(self, texts):
        self.calls.append([threading.current_thread().name, *texts])
        return Tagger.tag(self, texts)


def test_two_workers_tag_side_by_side_with_the_same_records(tagger: Tagger):
    """Two worker threads, each on its own replica of the Tagger (one model, a tokenizer each): every request gets
    its own records back, and both workers tag (a shared fast tokenizer would fail with "Already borrowed")."""
    counting = NamesThreads(tagger)
    payloads = [{"text": f"{TEXTS[index % len(TEXTS)]} {index}"} for index in range(60)]
    with Serving(create_app(counting, Limits(max_batch=4, max_wait_ms=1, workers=2))) as base:
        responses = asyncio.run(many(base, payloads))
        info = httpx.get(f"{base}/info").json()
    assert [response.status_code for response in responses] == [200] * len(payloads)
    for payload, response in zip(payloads, responses):
        assert same_spans(response.json(), expected(tagger, [payload["text"]])[0])
    assert info["limits"]["workers"] == 2 and info["served"]["requests"] == len(payloads)
    assert sorted(text for call in counting.calls for text in call[1:]) == sorted(p["text"] for p in payloads)
    assert {call[0] for call in counting.calls} == {"tagger-0", "tagger-1"}
