"""`bertkit serve`: a model folder behind an HTTP API (bertkit.serve).

bertkit serve --model DIR [--task embed] [--port 8080] [--api-key KEY]
"""

from __future__ import annotations

import argparse
import os

from bertkit.cli.common import add_device, add_precision, add_renamed, add_threads, apply_threads
from bertkit.serve.settings import BACKENDS, POOLINGS, TASKS, ServeSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    d = ServeSettings(model="")  # the flags' defaults are the settings' own, declared once
    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP with dynamic batching (/embed, /v1/embeddings, /predict)",
        description="Answer HTTP requests with a model folder: POST /embed (text-embeddings-inference's "
        "shape), /v1/embeddings (OpenAI's), /predict (the task's pipeline); GET /health, /info, /metrics "
        "(Prometheus), /docs. Requests are batched across clients up to a token budget. Listens on "
        "127.0.0.1 unless --host says otherwise; SIGTERM finishes the requests in flight and exits 0. "
        "Needs the serve extra: pip install 'bertkit[serve]'.",
    )
    p.add_argument(
        "--model", required=True, help="model folder (or hub name); for qa/ner/classify/nli, a fine-tuned one"
    )
    p.add_argument("--task", default=d.task, choices=TASKS, help="what /predict answers (/embed needs embed)")
    p.add_argument("--host", default=d.host, help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=d.port, help="port to listen on (0: a free one, printed at start)")
    p.add_argument(
        "--backend", default=d.backend, choices=BACKENDS, help="onnx: an exported folder (bertkit export onnx)"
    )
    add_precision(p, inference=True)
    add_renamed(p, "--dtype", "--precision", choices=["fp32", "bf16", "fp16", "int8", "float32", "bfloat16", "float16"])
    add_device(p)
    add_threads(p)
    p.add_argument("--pooling", default=d.pooling, choices=POOLINGS, help="embed: token vectors -> one vector")
    p.add_argument("--max-batch-tokens", type=int, default=d.max_batch_tokens, help="tokens (unpadded) per forward")
    p.add_argument("--max-batch-requests", type=int, default=d.max_batch_requests, help="inputs per forward")
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.batch_wait_ms,
        help="while another forward runs, how long a free forward thread waits for a fuller batch",
    )
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="inputs waiting; past it, 429 with Retry-After")
    p.add_argument("--max-inputs", type=int, default=d.max_inputs, help="inputs per request; past it, 413")
    p.add_argument("--max-input-chars", type=int, default=d.max_input_chars, help="characters per input; past it, 413")
    p.add_argument("--payload-limit", type=int, default=d.payload_limit, help="bytes per request body; past it, 413")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds a request may wait; past it, 503")
    p.add_argument(
        "--workers", type=int, default=None, help="forward threads (default: one per CPU thread on the CPU, 1 on a GPU)"
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("BERTKIT_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every route but /health and the docs "
        "(default: $BERTKIT_API_KEY, else no key)",
    )
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from bertkit.serve.server import serve  # lazy: keeps bertkit --help free of torch

    apply_threads(args)
    settings = ServeSettings(
        model=args.model,
        task=args.task,
        host=args.host,
        port=args.port,
        backend=args.backend,
        dtype=args.precision,
        device=args.device,
        pooling=args.pooling,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_requests=args.max_batch_requests,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
        max_inputs=args.max_inputs,
        max_input_chars=args.max_input_chars,
        payload_limit=args.payload_limit,
        timeout=args.timeout,
        workers=args.workers,
        api_key=args.api_key,
    )
    settings.check()

    def announce(url: str) -> None:
        print(f"bertkit serve: {settings.task} with {settings.model} on {url} (docs: {url}/docs)", flush=True)

    serve(settings, on_listening=announce)
    return 0
