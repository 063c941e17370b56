"""What `bertkit serve` is told: the model, where to listen, and the limits that keep it alive.

Every limit is a number a client can hit, and each has its own answer: a body over
`payload_limit` bytes, more than `max_inputs` inputs or an input over `max_input_chars`
characters (or, unless the request says `truncate`, over the model's token limit) is a 413; a
full queue is a 429 with Retry-After; a request not answered within `timeout` seconds is a 503.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bertkit.errors import BertkitError

TASKS = ("embed", "classify", "nli", "ner", "qa", "fill-mask")
POOLINGS = ("mean", "cls", "max")
# inference arithmetic, in the CLI's spelling and in torch's
DTYPES = ("fp32", "bf16", "fp16", "int8", "float32", "bfloat16", "float16")
BACKENDS = ("torch", "onnx")
LOOPBACK = "127.0.0.1"
# A request's inputs are tokenized in one call; past this many, the tokenizer forks worker
# processes, which a threaded server must never do.
MOST_INPUTS = 1024


@dataclass
class ServeSettings:
    model: str
    task: str = "embed"
    host: str = LOOPBACK  # loopback unless told otherwise: a server reachable from outside is a choice
    port: int = 8080
    backend: str = "torch"
    dtype: str = "fp32"
    pooling: str = "mean"  # embed: how token vectors become one sentence vector
    device: str = "auto"
    max_batch_tokens: int = 16384  # tokens (without padding) in one forward
    max_batch_requests: int = 64  # inputs in one forward
    batch_wait_ms: float = 5.0  # while another forward runs, how long a free thread waits to fill a batch
    max_queue: int = 1024  # inputs waiting for a forward; past it, 429
    max_inputs: int = 256  # inputs in one request (never more than max_queue)
    max_input_chars: int = 20000  # characters in one input
    payload_limit: int = 2_000_000  # bytes in one request body
    timeout: float = 60.0  # seconds a request may wait for its answer; past it, 503
    workers: int | None = None  # forward threads (None: one per CPU thread on the CPU, 1 on a GPU)
    api_key: str | None = None  # when set, every route but /health needs "Authorization: Bearer KEY"

    def __post_init__(self) -> None:
        self.model = os.fspath(self.model)  # a Path is welcome; /info and OpenAI's "model" show the text

    def check(self) -> None:
        """Refuse settings that cannot serve, naming the flag and the fix."""
        if self.task not in TASKS:
            raise BertkitError(f"--task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.backend not in BACKENDS:
            raise BertkitError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise BertkitError(f"--precision {self.dtype!r} is not one of fp32, bf16, fp16, int8")
        if self.pooling not in POOLINGS:
            raise BertkitError(f"--pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if not 0 <= self.port <= 65535:
            raise BertkitError(f"--port {self.port}: give 0..65535 (0 picks a free port)")
        for flag, value in (
            ("--max-batch-tokens", self.max_batch_tokens),
            ("--max-batch-requests", self.max_batch_requests),
            ("--max-queue", self.max_queue),
            ("--max-inputs", self.max_inputs),
            ("--max-input-chars", self.max_input_chars),
            ("--payload-limit", self.payload_limit),
        ):
            if value < 1:
                raise BertkitError(f"{flag} {value}: give a positive number")
        if self.max_inputs > MOST_INPUTS:
            raise BertkitError(f"--max-inputs {self.max_inputs}: at most {MOST_INPUTS}; send more in several requests")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise BertkitError(f"--batch-wait-ms {self.batch_wait_ms}: give 0..1000 milliseconds")
        if not self.timeout > 0:
            raise BertkitError(f"--timeout {self.timeout}: give a positive number of seconds")
        if self.workers is not None and self.workers < 1:
            raise BertkitError(f"--workers {self.workers}: give a positive number")
        if self.api_key is not None and not self.api_key.strip():
            raise BertkitError("--api-key is empty; give a key, or leave the flag out to serve without one")

    @property
    def inputs_per_request(self) -> int:
        """The most inputs one request may carry: a request larger than the queue could never enter it."""
        return min(self.max_inputs, self.max_queue)
