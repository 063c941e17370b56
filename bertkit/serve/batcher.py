"""Dynamic batching: many small requests become few large forwards.

A request's inputs enter one bounded FIFO queue as separate items (a request that does not fit
is refused whole: `QueueFull`, the server's 429). Each forward thread takes what is waiting, in
arrival order, until the next item would pass the token budget (`max_batch_tokens`, counted
without padding) or the batch holds `max_batch_requests` items; it sorts them by length, runs one
forward, and hands each item's row back to its request. A request's inputs may so span several
batches; its future resolves when its last row is in, from the event loop's own thread.

A forward that raises fails the requests with an item in that batch and nothing else: the thread
goes on with the next batch. A request that times out (or whose client went away) leaves the
queue at once; rows of it already in a running forward are dropped.

While another forward runs, a thread that finds less than a full batch waits up to `linger`
seconds for more to arrive, as long as inputs keep arriving (ARRIVAL_GAP): the one running keeps
the cores busy meanwhile, and a larger batch costs less per input. With no other forward running
(a lone client) nothing waits.

Items carry a `key` (the request's options that change the forward, e.g. fill-mask's top_k);
one batch only holds items with the same key, taken in order, the others keep their place.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bertkit.log import get_logger
from bertkit.serve.metrics import Metrics

logger = get_logger(__name__)

# While lingering, a thread stops waiting once this long passes with nothing new arriving: more
# is then not on its way (one-sentence clients waiting on the running forward), and waiting the
# whole linger left the thread idle for it. At 32 such clients on 2 cores: 1.64-1.68 cores busy
# with the plain linger, 1.75-1.79 with this (docs/serving.md).
ARRIVAL_GAP = 0.001

RunBatch = Callable[[list[Any], tuple], Sequence[Any]]


class QueueFull(Exception):
    """The queue cannot take this request's inputs now; the client should retry later."""


class Stopping(Exception):
    """The server is shutting down and takes no new work."""


class _Request:
    __slots__ = ("future", "loop", "rows", "remaining", "done", "arrived")

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int) -> None:
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.rows: list[Any] = [None] * n
        self.remaining = n
        self.done = False  # answered (rows complete, failed, timed out or cancelled)
        self.arrived = time.monotonic()


class _Item:
    __slots__ = ("request", "index", "value", "length", "key")

    def __init__(self, request: _Request, index: int, value: Any, length: int, key: tuple) -> None:
        self.request, self.index, self.value, self.length, self.key = request, index, value, length, key


class Batcher:
    """Queue + forward threads; `await submit(values, lengths)` -> one output per value."""

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_tokens: int,
        max_batch_requests: int,
        max_queue: int,
        workers: int = 1,
        linger: float = 0.0,
        on_thread_start: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self.max_queue = max_queue
        self.linger = linger
        self.metrics = metrics
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = 0  # forwards running now
        self._arrived = 0.0  # when inputs last entered the queue
        self._on_thread_start = on_thread_start
        self._threads = [
            threading.Thread(target=self._work, name=f"bertkit-serve-{w}", daemon=True) for w in range(workers)
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float | None = None) -> None:
        """Take no new requests, finish what is queued, and join the forward threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout)

    def alive(self) -> bool:
        """Whether every forward thread runs (and the batcher takes requests)."""
        return not self._stopping and all(t.is_alive() for t in self._threads)

    def depth(self) -> int:
        """Inputs waiting for a forward."""
        return len(self._queue)

    # ------------------------------------------------------------------ the event loop's side
    async def submit(
        self, values: Sequence[Any], lengths: Sequence[int], key: tuple = (), timeout: float | None = None
    ) -> list[Any]:
        """The outputs for `values` in order; raises QueueFull, Stopping, TimeoutError or the model's error."""
        request = _Request(asyncio.get_running_loop(), len(values))
        if not values:
            return []
        items = [_Item(request, i, v, n, key) for i, (v, n) in enumerate(zip(values, lengths))]
        with self._cond:
            if self._stopping:
                raise Stopping("the server is shutting down")
            if len(self._queue) + len(items) > self.max_queue:
                raise QueueFull(f"{len(self._queue)} inputs are waiting (the queue holds {self.max_queue})")
            self._queue.extend(items)
            self._arrived = time.monotonic()
            self._cond.notify(len(self._threads))
        try:
            return await asyncio.wait_for(request.future, timeout)
        except BaseException:  # timeout, or the client went away: its waiting items leave the queue
            self._withdraw(request)
            raise

    def _withdraw(self, request: _Request) -> None:
        with self._cond:
            request.done = True
            if any(item.request is request for item in self._queue):
                self._queue = collections.deque(item for item in self._queue if item.request is not request)

    # ------------------------------------------------------------------ the forward threads
    def _work(self) -> None:
        if self._on_thread_start is not None:
            self._on_thread_start()
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy -= bool(batch)

    def _take(self) -> list[_Item] | None:
        """The next batch (blocks until there is one); None once stopping with nothing left."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.linger
            while self._busy and len(self._queue) < self.max_batch_requests and not self._stopping:
                left = min(deadline, self._arrived + ARRIVAL_GAP) - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken: list[_Item] = []
            kept: collections.deque[_Item] = collections.deque()
            tokens = 0
            queue = self._queue
            while queue:
                item = queue.popleft()
                if item.request.done:
                    continue
                if taken and item.key != taken[0].key:
                    kept.append(item)  # waits for a batch of its own kind, keeping its place
                    continue
                if taken and (len(taken) >= self.max_batch_requests or tokens + item.length > self.max_batch_tokens):
                    queue.appendleft(item)  # the budget is spent: the rest waits, in order
                    break
                taken.append(item)
                tokens += item.length
            kept.extend(queue)
            self._queue = kept
            self._busy += bool(taken)
        taken.sort(key=lambda item: item.length)
        return taken

    def _run(self, batch: list[_Item]) -> None:
        if not batch:
            return
        start = time.monotonic()
        waited = [start - item.request.arrived for item in batch]
        try:
            outputs = self.run_batch([item.value for item in batch], batch[0].key)
            if len(outputs) != len(batch):
                raise RuntimeError(f"the model answered {len(outputs)} rows for {len(batch)} inputs")
        except Exception as err:  # this batch's requests fail; the thread serves the next batch
            logger.warning(f"a forward of {len(batch)} inputs failed: {type(err).__name__}: {err}")
            self._record(batch, waited, start, failed=True)
            for request in {id(item.request): item.request for item in batch}.values():
                self._finish(request, error=err)
            return
        self._record(batch, waited, start, failed=False)
        for item, row in zip(batch, outputs):
            request = item.request
            if request.done:
                continue
            request.rows[item.index] = row
            request.remaining -= 1
            if request.remaining == 0:
                self._finish(request)

    def _record(self, batch: list[_Item], waited: list[float], start: float, failed: bool) -> None:
        if self.metrics is not None:
            seconds = time.monotonic() - start
            self.metrics.batch(len(batch), sum(item.length for item in batch), waited, seconds, failed)

    def _finish(self, request: _Request, error: BaseException | None = None) -> None:
        with self._cond:
            if request.done:
                return
            request.done = True
        try:
            request.loop.call_soon_threadsafe(_settle, request.future, request.rows, error)
        except RuntimeError:  # the event loop is closed: nobody waits for this answer any more
            pass


def _settle(future: asyncio.Future, rows: list[Any], error: BaseException | None) -> None:
    if future.done():  # timed out or cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(rows)
