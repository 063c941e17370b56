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
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

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

    async def vectors(self, texts: list[str], truncate: bool, normalize: bool) -> tuple[np.ndarray, int]:
        """([N, H] float32 vectors, tokens read); numpy, not torch: a request's few rows cost
        microseconds there and tens of them in torch's dispatch, on the event loop's thread."""
        lengths = await self.lengths(texts, truncate)
        rows = await self.run(texts, lengths)
        vectors = np.stack([row.numpy() for row in rows])
        if normalize:  # as F.normalize: v / max(|v|, 1e-12)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
        return vectors, sum(lengths)

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
    posts = _add_routes(app, service)
    app.add_middleware(Gate, settings=settings, service=service, posts=posts)
    return app


def refused(err: Refused) -> Response:
    return _error(err.status, err.message, err.error_type, err.headers)


def invalid(errors: Sequence[Any]) -> Response:
    return _error(422, _one_line(errors), "validation")


def unexpected(path: str, err: Exception) -> Response:
    logger.warning(f"{path}: {_summary(err)}")
    return _error(500, f"internal error ({_summary(err)})", "backend")


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def on_refused(request: Request, err: Refused) -> Response:
        return refused(err)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, err: Exception) -> Response:
        return unexpected(request.url.path, err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> Response:
        return invalid(err.errors())


def _one_line(errors: Sequence[Any]) -> str:
    """pydantic's errors as one line: the first field at fault and what each allowed type wanted."""
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', first.get('msg'))})"
    loc = _where(first)
    if not loc:
        return "the body must be a JSON object (Content-Type: application/json)"
    field = loc[0]
    # a union (text or list of texts) reports once per allowed type: join them
    wanted = dict.fromkeys(e.get("msg", "") for e in errors if _where(e)[:1] == [field])
    return f"{field}: {' or '.join(w for w in wanted if w)}"


def _where(error: Any) -> list[str]:
    """An error's place in the body (FastAPI's errors start with "body", pydantic's own do not)."""
    return [str(p) for p in error.get("loc", ()) if p != "body"]


# a POST route's path -> (its body's model, its endpoint): what Gate calls directly
Posts = dict[str, tuple[type[BaseModel], Callable[[Any], Awaitable[Response]]]]


def _add_routes(app: FastAPI, service: Service) -> Posts:
    """Declare the routes; return the POST ones for Gate to call directly (see Gate)."""
    settings, runner = service.settings, service.runner
    posts: Posts = {}

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
            return json_response(vectors)

        @app.post("/v1/embeddings", summary="sentence vectors, unit length (OpenAI's shape)")
        async def openai_embeddings(body: OpenAIEmbeddingRequest) -> Response:
            vectors, tokens = await service.vectors(texts_of(body.input, settings), False, True)
            if body.encoding_format == "base64":
                rows: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors]
            else:
                rows = list(vectors)
            data = [{"object": "embedding", "embedding": row, "index": i} for i, row in enumerate(rows)]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return json_response({"object": "list", "data": data, "model": settings.model, "usage": usage})

        posts["/embed"] = (EmbedRequest, embed)
        posts["/v1/embeddings"] = (OpenAIEmbeddingRequest, openai_embeddings)

    @app.post("/predict", summary=f"{settings.task}: the pipeline's output for one input or a list")
    async def predict(body: PredictRequest) -> Response:
        inputs, single = predict_inputs(settings.task, body.inputs, settings)
        if body.top_k is not None and settings.task not in ("qa", "fill-mask"):
            raise Refused(422, f"top_k: only qa and fill-mask take it, this server runs {settings.task}")
        lengths = await service.lengths(inputs, body.truncate, getattr(runner, "windowed", False))
        key = (("top_k", body.top_k),) if body.top_k is not None else ()
        outputs = [_plain(x) for x in await service.run(inputs, lengths, key)]
        return json_response(outputs[0] if single else outputs)

    posts["/predict"] = (PredictRequest, predict)
    return posts


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
    """ASGI middleware before every route: API key, payload limit, in-flight count and metrics.

    Having read a POST body whole (to count its bytes), the gate also answers the POST routes
    itself: it validates the body with the route's pydantic model straight from the JSON bytes and
    awaits the route's endpoint, the same function FastAPI declared (so the OpenAPI docs stay).
    FastAPI's way to the same call (a Request object, JSON decoding, dependency solving, its
    exception middleware) took more of the event loop's time than the endpoint's own work, and the
    event loop shares the cores with the forward threads (docs/serving.md)."""

    def __init__(self, app: Any, settings: ServeSettings, service: Service, posts: Posts) -> None:
        self.app = app
        self.settings = settings
        self.service = service
        self.posts = posts
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
            refusal, receive, body = await self._admit(scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send_and_see)
            elif body is not None and scope["path"] in self.posts:
                await (await self._post(scope, body))(scope, receive, send_and_see)
            else:
                await self.app(scope, receive, send_and_see)
        finally:
            self.service.in_flight -= 1
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.service.metrics.request(route, status["code"], time.monotonic() - start)

    async def _admit(self, scope: dict, receive: Any) -> tuple[Response | None, Any, bytes | None]:
        """(a refusal or None, the receive channel the app reads the body from, a POST's whole body)."""
        headers = dict(scope.get("headers") or [])
        if self.key is not None and scope["path"] not in PUBLIC_PATHS:
            given = headers.get(b"authorization", b"")
            token = given[7:] if given[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):  # constant time: the key is not guessed byte by byte
                what = "wrong API key" if token else 'missing API key: send "Authorization: Bearer KEY"'
                return _error(401, what, "unauthorized", {"WWW-Authenticate": "Bearer"}), receive, None
        if scope["method"] != "POST":
            return None, receive, None
        limit = self.settings.payload_limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._too_large(int(declared)), receive, None
        body, more = bytearray(), True
        while more:  # read the whole body here, counting: a chunked body has no Content-Length to trust
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, _replay(b"", receive), None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return self._too_large(len(body), at_least=True), receive, None
        whole = bytes(body)
        return None, _replay(whole, receive), whole

    async def _post(self, scope: dict, body: bytes) -> Response:
        """A POST route's answer: its endpoint awaited with the body validated here, errors as the
        app's exception handlers answer them."""
        model, endpoint = self.posts[scope["path"]]
        try:
            if not _json_content(scope):
                raise Refused(422, "the body must be a JSON object (Content-Type: application/json)")
            return await endpoint(model.model_validate_json(body))
        except ValidationError as err:
            return invalid(err.errors())
        except Refused as err:
            return refused(err)
        except Exception as err:
            return unexpected(scope["path"], err)

    def _too_large(self, size: int, at_least: bool = False) -> Response:
        more = "more than " if at_least else ""
        return _error(
            413,
            f"the body has {more}{size} bytes; at most {self.settings.payload_limit} (--payload-limit)",
            "validation",
        )


def _json_content(scope: dict) -> bool:
    """Whether the request says its body is JSON, or says nothing (as FastAPI reads a body)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return True


def _replay(body: bytes, receive: Any) -> Any:
    """A receive channel that gives the body read by the gate once, then the connection's own events."""
    sent = {"done": False}

    async def replay() -> dict:
        if sent["done"]:
            return await receive()
        sent["done"] = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
