"""The HTTP service: routes, limits, the API key, errors as one-line JSON, and the batcher's lifespan.

    POST /embed            text-embeddings-inference's shape: {"inputs", "normalize", "truncate"} -> [[...], ...]
    POST /v1/embeddings    OpenAI's shape: {"input", "model", "encoding_format"} -> {"data", "model", "usage"}
    POST /predict          the task's pipeline output for one input or a list
    GET  /health /info /metrics, and the OpenAPI docs at /docs

Errors answer {"error": MESSAGE, "error_type": KIND} (TEI's shape): 401 wrong or missing key,
413 a limit passed, 422 malformed JSON or wrong types, 429 queue full (with Retry-After), 500 the
forward failed (only the requests in that batch), 503 timed out or shutting down.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, MutableMapping, Sequence
from typing import Any

import orjson
import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from bertkit import __version__
from bertkit.log import get_logger
from bertkit.serve.batcher import Batcher, QueueFull, Stopping
from bertkit.serve.metrics import CONTENT_TYPE, Metrics
from bertkit.serve.schemas import (
    EmbedRequest,
    OpenAIEmbeddingRequest,
    PredictRequest,
    Refused,
    predict_inputs,
    texts_of,
)
from bertkit.serve.settings import ServeSettings

logger = get_logger(__name__)

PUBLIC_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")  # no key needed
RETRY_AFTER_SECONDS = 1
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": what}
    for code, what in (
        (401, "missing or wrong API key"),
        (413, "a limit passed: payload, inputs per request, characters or tokens per input"),
        (422, "malformed JSON, wrong types, unknown fields"),
        (429, "the queue is full: retry after Retry-After seconds"),
        (500, "the forward of this request's batch failed"),
        (503, "not answered within the timeout, or the server is stopping"),
    )
}


def json_response(value: Any, status: int = 200, headers: dict | None = None) -> Response:
    # orjson on numpy arrays: float32 written in their shortest exact form, ~15x faster than
    # json.dumps on Python floats (which FastAPI's default encoder would also walk one by one)
    body = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _summary(err: BaseException) -> str:
    """The exception's type and the first line of its message (torch's errors span many lines)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _error(status: int, message: str, error_type: str, headers: dict | None = None) -> Response:
    return json_response({"error": message, "error_type": error_type}, status, headers)


class Service:
    """The routes' work: limits, token counts, the batcher, and the answers' shapes."""

    def __init__(self, settings: ServeSettings, runner: Any, metrics: Metrics) -> None:
        self.settings = settings
        self.runner = runner
        self.metrics = metrics
        self.in_flight = 0
        self.batcher = Batcher(
            runner.run,
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_requests=settings.max_batch_requests,
            max_queue=settings.max_queue,
            workers=runner.workers,
            linger=settings.batch_wait_ms / 1000,
            on_thread_start=runner.thread_start,
            metrics=metrics,
        )

    async def lengths(self, inputs: list[Any], truncate: bool, windowed: bool = False) -> list[int]:
        """Tokens per input, capped at the model's limit; Refused(413) for a longer one unless truncate."""
        chars = sum(len(x) if isinstance(x, str) else sum(map(len, _texts(x))) for x in inputs)
        if chars > 4096:  # long texts are tokenized off the event loop, which keeps answering others
            counts = await asyncio.to_thread(self.runner.measure, inputs)
        else:
            counts = self.runner.measure(inputs)
        limit = self.runner.max_tokens
        for i, n in enumerate(counts):
            if n > limit and not truncate and not windowed:
                raise Refused(
                    413, f"input {i} has {n} tokens; the model takes at most {limit}: shorten it or send truncate=true"
                )
        return [min(n, limit) for n in counts]

    async def run(self, inputs: list[Any], lengths: list[int], key: tuple = ()) -> list[Any]:
        try:
            return await self.batcher.submit(inputs, lengths, key, timeout=self.settings.timeout)
        except QueueFull as err:
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            raise Refused(429, f"overloaded: {err}; retry later", "overloaded", retry) from None
        except Stopping:
            raise Refused(503, "the server is shutting down; retry on another instance", "unhealthy") from None
        except (TimeoutError, asyncio.TimeoutError):
            raise Refused(503, f"not answered within {self.settings.timeout:g} s; retry later", "overloaded") from None
        except Refused:
            raise
        except Exception as err:  # the forward of this request's batch raised
            raise Refused(500, f"the model failed on this batch ({_summary(err)})", "backend") from None

    async def vectors(self, texts: list[str], truncate: bool, normalize: bool) -> tuple[torch.Tensor, int]:
        lengths = await self.lengths(texts, truncate)
        rows = await self.run(texts, lengths)
        vectors = torch.stack(rows)
        return (F.normalize(vectors, dim=-1) if normalize else vectors), sum(lengths)

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "model": s.model,
            "task": s.task,
            "backend": s.backend,
            "dtype": s.dtype,
            "device": str(self.runner.device),
            "version": __version__,
            **self.runner.info(),
            "limits": {
                "max_batch_tokens": s.max_batch_tokens,
                "max_batch_requests": s.max_batch_requests,
                "batch_wait_ms": s.batch_wait_ms,
                "max_queue": s.max_queue,
                "max_inputs": s.inputs_per_request,
                "max_input_chars": s.max_input_chars,
                "payload_limit": s.payload_limit,
                "timeout": s.timeout,
                "workers": self.runner.workers,
            },
        }


def _texts(x: Any) -> list[str]:
    return list(x.values()) if isinstance(x, dict) else list(x)


def create_app(settings: ServeSettings, runner: Any) -> FastAPI:
    """The ASGI app for a loaded runner (bertkit.serve.runners); the batcher starts with the app."""
    metrics = Metrics()
    service = Service(settings, runner, metrics)
    metrics.bind(service.batcher.depth, lambda: service.in_flight)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.batcher.start()
        yield
        await asyncio.to_thread(service.batcher.stop)

    app = FastAPI(
        title="bertkit serve",
        description=f"{settings.task} with {settings.model}",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.service = service
    _add_errors(app)
    _add_routes(app, service)
    app.add_middleware(Gate, settings=settings, service=service)
    return app


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, err: Refused) -> Response:
        return _error(err.status, err.message, err.error_type, err.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        logger.warning(f"{request.url.path}: {_summary(err)}")
        return _error(500, f"internal error ({_summary(err)})", "backend")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        return _error(422, _one_line(err.errors()), "validation")


def _one_line(errors: Sequence[Any]) -> str:
    """pydantic's errors as one line: the first field at fault and what each allowed type wanted."""
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', first.get('msg'))})"
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if not loc:
        return "the body must be a JSON object (Content-Type: application/json)"
    field = loc[0]
    # a union (text or list of texts) reports once per allowed type: join them
    wanted = dict.fromkeys(e.get("msg", "") for e in errors if [str(p) for p in e.get("loc", ())][1:2] == [field])
    return f"{field}: {' or '.join(w for w in wanted if w)}"


def _add_routes(app: FastAPI, service: Service) -> None:
    settings, runner = service.settings, service.runner

    @app.get("/health", summary="200 while the forward threads run")
    async def health() -> Response:
        if service.batcher.alive():
            return json_response({"status": "ok"})
        return _error(503, "the forward threads are not running", "unhealthy")

    @app.get("/info", summary="model, task, dims and limits")
    async def info() -> Response:
        return json_response(service.info())

    @app.get("/metrics", summary="Prometheus text: requests, batch sizes, queue depth, latency")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    if settings.task == "embed":

        @app.post("/embed", summary="sentence vectors (text-embeddings-inference's shape)")
        async def embed(body: EmbedRequest) -> Response:
            vectors, _ = await service.vectors(texts_of(body.inputs, settings), body.truncate, body.normalize)
            return json_response(vectors.numpy())

        @app.post("/v1/embeddings", summary="sentence vectors, unit length (OpenAI's shape)")
        async def openai_embeddings(body: OpenAIEmbeddingRequest) -> Response:
            vectors, tokens = await service.vectors(texts_of(body.input, settings), False, True)
            if body.encoding_format == "base64":
                rows: list[Any] = [base64.b64encode(v.numpy().astype("<f4").tobytes()).decode() for v in vectors]
            else:
                rows = list(vectors.numpy())
            data = [{"object": "embedding", "embedding": row, "index": i} for i, row in enumerate(rows)]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return json_response({"object": "list", "data": data, "model": settings.model, "usage": usage})

    @app.post("/predict", summary=f"{settings.task}: the pipeline's output for one input or a list")
    async def predict(body: PredictRequest) -> Response:
        inputs, single = predict_inputs(settings.task, body.inputs, settings)
        if body.top_k is not None and settings.task not in ("qa", "fill-mask"):
            raise Refused(422, f"top_k: only qa and fill-mask take it, this server runs {settings.task}")
        lengths = await service.lengths(inputs, body.truncate, getattr(runner, "windowed", False))
        key = (("top_k", body.top_k),) if body.top_k is not None else ()
        outputs = [_plain(x) for x in await service.run(inputs, lengths, key)]
        return json_response(outputs[0] if single else outputs)


def _plain(x: Any) -> Any:
    """Pipeline output (tensors, numpy numbers) as JSON values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


class Gate:
    """ASGI middleware before every route: API key, payload limit, in-flight count and metrics."""

    def __init__(self, app: Any, settings: ServeSettings, service: Service) -> None:
        self.app = app
        self.settings = settings
        self.service = service
        self.key = settings.api_key.encode() if settings.api_key else None
        self.routes = {"/embed", "/v1/embeddings", "/predict", "/health", "/info", "/metrics"}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status = {"code": 500}

        async def send_and_see(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.service.in_flight += 1
        try:
            refusal, receive = await self._admit(scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send_and_see)
            else:
                await self.app(scope, receive, send_and_see)
        finally:
            self.service.in_flight -= 1
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.service.metrics.request(route, status["code"], time.monotonic() - start)

    async def _admit(self, scope: dict, receive: Any) -> tuple[Response | None, Any]:
        """(a refusal or None, the receive channel the app reads the body from)."""
        headers = dict(scope.get("headers") or [])
        if self.key is not None and scope["path"] not in PUBLIC_PATHS:
            given = headers.get(b"authorization", b"")
            token = given[7:] if given[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):  # constant time: the key is not guessed byte by byte
                what = "wrong API key" if token else 'missing API key: send "Authorization: Bearer KEY"'
                return _error(401, what, "unauthorized", {"WWW-Authenticate": "Bearer"}), receive
        if scope["method"] != "POST":
            return None, receive
        limit = self.settings.payload_limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._too_large(int(declared)), receive
        body, more = bytearray(), True
        while more:  # read the whole body here, counting: a chunked body has no Content-Length to trust
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, _replay(b"", receive)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return self._too_large(len(body), at_least=True), receive
        return None, _replay(bytes(body), receive)

    def _too_large(self, size: int, at_least: bool = False) -> Response:
        more = "more than " if at_least else ""
        return _error(
            413,
            f"the body has {more}{size} bytes; at most {self.settings.payload_limit} (--payload-limit)",
            "validation",
        )


def _replay(body: bytes, receive: Any) -> Any:
    """A receive channel that gives the body read by the gate once, then the connection's own events."""
    sent = {"done": False}

    async def replay() -> dict:
        if sent["done"]:
            return await receive()
        sent["done"] = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
