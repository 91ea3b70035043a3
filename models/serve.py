"""The tagger as an HTTP service, on FastAPI and uvicorn (`pip install -e '.[serve]'`):

    python -m models.serve --checkpoint runs/e5-small-offline/model [--host 127.0.0.1] [--port 8000]

    POST /tag   {"text": "..."}          -> one record: {"text", "entities": [span...], "events": [...], "arguments"}
                {"texts": ["...", ...]}  -> {"results": [record, ...]}, in the order given
    GET /health                          -> 200 {"status": "ok"} while the tagger is ready
    GET /info                            -> layers, labels, roles, encoder, precision, measured F1, limits, counters

Records are models/records.py's, the JSONL of `python -m models` without the id. Errors are JSON too,
{"error": message, "field": the offending field}: 413 for a text over --max-chars or more than --max-texts
texts, 422 for a body that is not JSON or a field of the wrong type.

Requests in flight together are tagged together: a worker thread takes every request waiting in the queue, up
to --max-batch texts or until --max-wait-ms after the first, into one Tagger.tag call. A busy tagger lets the
queue fill meanwhile, so throughput grows with concurrency instead of each request running alone. On a CPU,
--workers such threads (default 2) tag batches side by side, torch's threads split among them: a batch of
served requests mixes sentence lengths and is cut into small forward passes, which two threads of torch
share out poorly, while two passes of one thread each keep both cores busy, one of them also while the other
decodes its batch or waits for the next.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request) as objects
import argparse
import asyncio
import json
import logging
import queue
import socket
import sys
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from models.labels import types_of
from models.precision import PRECISIONS
from models.records import doc_record, json_bytes, json_type
from models.tagger import Doc, Tagger

log = logging.getLogger("models.serve")


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts per request
    max_chars: int = 100_000  # characters per text: the Tagger tags this much in full (tests/test_bad_input.py)
    max_batch: int = 32  # texts per Tagger.tag call, from however many requests
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    workers: int = 1  # threads tagging batches at once, each with its own share of torch's threads

    def __post_init__(self):
        for name in ("max_texts", "max_chars", "max_batch", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {self.max_wait_ms!r}")

    @property
    def max_body_bytes(self) -> int:
        """The largest body that can hold an acceptable request: every character escaped as JSON's \\uXXXX\\uXXXX
        (12 bytes, an astral character), plus room for the syntax. Anything longer is refused unread."""
        return self.max_texts * (12 * self.max_chars + 16) + 1024


class RequestError(Exception):
    def __init__(self, status: int, message: str, field: str):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def parse_request(body: bytes, limits: Limits) -> tuple[list[str], bool]:
    """The texts of a /tag body and whether it gave one "text" (else "texts"); RequestError otherwise."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(
            413,
            f"the body is {len(body):,} bytes, more than any request within the limits "
            f"({limits.max_texts} texts of {limits.max_chars:,} characters) takes",
            "body",
        )
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as err:
        raise RequestError(422, f"the body is not UTF-8 (byte offset {err.start})", "body") from None
    except json.JSONDecodeError as err:
        raise RequestError(
            422, f"the body is not JSON: {err.msg} at line {err.lineno} column {err.colno}", "body"
        ) from None
    except RecursionError:
        raise RequestError(422, "the body is not JSON this service reads: nested too deeply", "body") from None
    usage = 'give {"text": "..."} or {"texts": ["...", ...]}'
    if not isinstance(payload, dict):
        raise RequestError(422, f"expected a JSON object, got {json_type(payload)}: {usage}", "body")
    for key in payload:
        if key not in ("text", "texts"):
            raise RequestError(422, f"unknown field: {usage}", key)
    if "text" in payload and "texts" in payload:
        raise RequestError(422, f"both text and texts are given: {usage}", "texts")
    if "text" in payload:
        if not isinstance(payload["text"], str):
            raise RequestError(422, f"expected a string, got {json_type(payload['text'])}", "text")
        texts, single = [payload["text"]], True
    elif "texts" in payload:
        texts, single = payload["texts"], False
        if not isinstance(texts, list):
            raise RequestError(422, f"expected an array of strings, got {json_type(texts)}", "texts")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise RequestError(422, f"expected a string, got {json_type(text)}", f"texts[{index}]")
    else:
        raise RequestError(422, f"missing: {usage}", "text")
    if len(texts) > limits.max_texts:
        raise RequestError(413, f"{len(texts):,} texts, at most {limits.max_texts} per request", "texts")
    for index, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise RequestError(
                413,
                f"{len(text):,} characters, at most {limits.max_chars:,} per text",
                "text" if single else f"texts[{index}]",
            )
    return texts, single


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass
class Counters:
    requests: int = 0
    texts: int = 0
    batches: int = 0  # Tagger.tag calls, retries of a failed batch included
    failed: int = 0  # requests the tagger raised on
    largest_batch: int = 0  # texts


class Batcher:
    """Owns the Tagger: each of `workers` threads takes the jobs waiting in the queue and tags their texts in one
    call, on its own replica of the Tagger (one model, a tokenizer each). Torch runs its own threads inside that
    call; the model's memory holds at most one batch per worker."""

    def __init__(self, tagger: Tagger, max_batch: int, max_wait_s: float, workers: int = 1):
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.counters = Counters()
        self._counting = threading.Lock()  # the workers count into one Counters
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        taggers = [tagger] + [tagger.replica() for _ in range(workers - 1)]
        self._threads = [
            threading.Thread(target=self._run, args=(own,), name=f"tagger-{index}", daemon=True)
            for index, own in enumerate(taggers)
        ]
        for thread in self._threads:
            thread.start()

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    async def tag(self, texts: list[str]) -> list[Doc]:
        loop = asyncio.get_running_loop()
        job = _Job(texts, loop.create_future(), loop)
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        for _ in self._threads:  # one stop per worker
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self, tagger: Tagger) -> None:
        closing = False
        while not closing:
            first = self._queue.get()
            if first is None:
                return
            jobs, count = [first], len(first.texts)
            deadline = time.monotonic() + self.max_wait_s
            while count < self.max_batch:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    closing = True
                    break
                jobs.append(job)
                count += len(job.texts)
            self._tag(tagger, jobs)

    def _tag(self, tagger: Tagger, jobs: list[_Job]) -> None:
        texts = [text for job in jobs for text in job.texts]
        with self._counting:
            self.counters.batches += 1
            self.counters.largest_batch = max(self.counters.largest_batch, len(texts))
        try:
            docs = tagger.tag(texts)
        except Exception as err:  # the failure goes back to the request that caused it
            if len(jobs) > 1:  # find the request at fault: the others must not fail with it
                for job in jobs:
                    self._tag(tagger, [job])
                return
            log.exception("tagging failed on a request of %d texts", len(texts))
            with self._counting:
                self.counters.failed += 1
            _deliver(jobs[0], None, err)
            return
        with self._counting:
            self.counters.requests += len(jobs)
            self.counters.texts += len(texts)
        begin = 0
        for job in jobs:
            _deliver(job, docs[begin : begin + len(job.texts)], None)
            begin += len(job.texts)


def _deliver(job: _Job, result, error: BaseException | None) -> None:
    try:
        job.loop.call_soon_threadsafe(_settle, job.future, result, error)
    except RuntimeError:  # the event loop has closed: the server is gone, and the request with it
        pass


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def checkpoint_info(tagger: Tagger) -> dict:
    """What /info says about the model: its layers and their types, roles, encoder, precision, measured F1 (the
    run's micro F1 per layer, and the arguments' labelled F1, end to end)."""
    provenance = tagger.provenance
    f1 = {
        split: {layer: scores.get("micro_f1", scores.get("labelled_f1")) for layer, scores in layers.items()}
        for split, layers in (provenance.get("metrics") or {}).items()
    }
    return {
        "layers": list(tagger.layers),
        "labels": {layer: types_of(labels) for layer, labels in tagger.layers.items()},
        "roles": list(tagger.roles),
        "encoder": provenance.get("encoder"),
        "precision": tagger.precision,
        "device": str(tagger.device),
        "max_length": tagger.settings.max_length,
        "f1": f1 or None,
        "data": provenance.get("data"),
    }


def create_app(tagger: Tagger, limits: Limits = Limits(), checkpoint: str | None = None):
    """The FastAPI app over one Tagger. Its worker thread starts here and stops when the app shuts down."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    class JSON(JSONResponse):
        def render(self, content) -> bytes:
            return json_bytes(content)

    batcher = Batcher(tagger, limits.max_batch, limits.max_wait_ms / 1000, limits.workers)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(
        title="Arabic news tagger",
        default_response_class=JSON,
        lifespan=lifespan,
        description="Entities, events and their arguments in Arabic text, as character-offset spans.",
    )
    app.state.batcher = batcher
    layers, arguments = list(tagger.layers), bool(tagger.roles)
    info = {
        "checkpoint": checkpoint,
        **checkpoint_info(tagger),
        "limits": {
            "max_texts": limits.max_texts,
            "max_chars": limits.max_chars,
            "max_batch": limits.max_batch,
            "max_wait_ms": limits.max_wait_ms,
            "workers": limits.workers,
        },
    }

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):  # 404, 405: the same shape as ours
        return JSON({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
        return JSON({"error": first.get("msg", "invalid request"), "field": where}, status_code=422)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError):
        return JSON({"error": error.message, "field": error.field}, status_code=error.status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):  # a bug of ours: JSON still, and logged
        log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSON({"error": f"internal error: {type(error).__name__}: {error}"}, status_code=500)

    text = {"type": "string", "maxLength": limits.max_chars}
    texts = {"type": "array", "maxItems": limits.max_texts, "items": text}
    body = {
        "oneOf": [
            {"type": "object", "properties": {"text": text}, "required": ["text"], "additionalProperties": False},
            {"type": "object", "properties": {"texts": texts}, "required": ["texts"], "additionalProperties": False},
        ]
    }

    # the body is read and checked by hand (parse_request), for its errors; the schema is for /docs
    schema = {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}

    @app.post("/tag", openapi_extra=schema)
    async def tag(request: Request):
        """Tag one text ("text") or several ("texts"); spans carry character offsets into each text."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise RequestError(
                413,
                f"the body is {int(declared):,} bytes, more than any request within the limits "
                f"({limits.max_texts} texts of {limits.max_chars:,} characters) takes",
                "body",
            )
        body = bytearray()
        async for chunk in request.stream():  # a body without a length is cut off at the limit too
            body += chunk
            if len(body) > limits.max_body_bytes:
                break
        texts, single = parse_request(bytes(body), limits)
        try:
            docs = await batcher.tag(texts)
        except Exception as err:  # logged by the worker; this request alone fails
            return JSON({"error": f"tagging failed: {type(err).__name__}: {err}"}, status_code=500)
        records = [doc_record(doc, layers, arguments) for doc in docs]
        # a Response as is: FastAPI would otherwise walk the records through jsonable_encoder first, which copies
        # every value of plain JSON types once more
        return JSON(records[0] if single else {"results": records})

    @app.get("/health")
    async def health():
        if not batcher.alive():
            return JSON({"status": "a tagger thread has stopped"}, status_code=503)
        return {"status": "ok"}

    @app.get("/info")
    async def describe():
        counters = batcher.counters
        return {
            **info,
            "served": {
                "requests": counters.requests,
                "texts": counters.texts,
                "batches": counters.batches,
                "failed": counters.failed,
                "largest_batch": counters.largest_batch,
            },
        }

    return app


def plan_workers(tagger: Tagger, workers: int | None) -> tuple[int, int]:
    """The workers to run and torch's CPU threads for each. By default two workers on a CPU of two cores or more,
    one on a GPU, where passes queue on the device anyway. On a CPU the threads are split among the workers, so
    that their passes side by side do not oversubscribe the cores (threads of a pass that wait for a descheduled
    one stall it whole)."""
    import torch

    threads, on_cpu = torch.get_num_threads(), tagger.device.type == "cpu"
    if workers is None:
        workers = 2 if on_cpu and threads >= 2 else 1
    if on_cpu and workers > 1:
        threads = max(1, threads // workers)
        torch.set_num_threads(threads)
    return workers, threads


def listening_socket(host: str, port: int) -> socket.socket:
    """The bound socket uvicorn serves on (bound before the model loads, so a port in use fails at once)."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it; without it Nagle's algorithm holds back the response's last segment until
    # the client's delayed ACK: about 45 ms per request on a socket handed to uvicorn (a 3x slower service alone)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    return listener


def main(argv: list[str] | None = None) -> int:
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m models.serve", description=__doc__.split("\n\n")[0].rstrip(":"))
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a checkpoint folder, e.g. runs/e5-small-offline/model"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--max-texts",
        type=int,
        default=defaults.max_texts,
        help=f"texts per request; more is a 413 (default {defaults.max_texts})",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=defaults.max_chars,
        help=f"characters per text; more is a 413 (default {defaults.max_chars:,})",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=defaults.max_batch,
        help=f"texts of concurrent requests tagged in one call (default {defaults.max_batch})",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help=f"how long a request waits for others to share its batch (default {defaults.max_wait_ms:g})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads tagging batches side by side, torch's CPU threads split among them "
        "(default: 2 on a CPU with 2 cores or more, else 1)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="as `python -m models` (default auto)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda where there is one)")
    parser.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=True, help="log every request (default on)"
    )
    args = parser.parse_args(argv)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as err:
        print(
            f"error: the service needs the serve extra ({err.name} is missing): pip install -e '.[serve]'",
            file=sys.stderr,
        )
        return 2
    try:
        limits = Limits(
            args.max_texts,
            args.max_chars,
            args.max_batch,
            args.max_wait_ms,
            1 if args.workers is None else args.workers,
        )
        # bound before the model loads, so a port in use fails at once rather than after the load
        listener = listening_socket(args.host, args.port)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        tagger = Tagger.load(
            args.checkpoint, device=args.device, batch_size=max(32, limits.max_batch), precision=args.precision
        )
    except (ValueError, FileNotFoundError) as err:  # CheckpointError, a bad precision for the device
        print(f"error: {err}", file=sys.stderr)
        return 2
    workers, threads = plan_workers(tagger, args.workers)
    limits = replace(limits, workers=workers)
    app = create_app(tagger, limits, checkpoint=str(args.checkpoint))
    host, port = listener.getsockname()[:2]
    print(
        f"serving {args.checkpoint} on http://{host}:{port} ({tagger.precision}, {tagger.device}, "
        f"workers {workers} of {threads} threads each)",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, access_log=args.access_log, log_level="info"))
    server.run(sockets=[listener])
    return 0


if __name__ == "__main__":
    sys.exit(main())
