"""Counters, gauges and histograms, exposed as Prometheus' text format (version 0.0.4) at /metrics.

Written here rather than pulled from prometheus_client: the server needs six series and one text
format, and the values are updated from the event loop and the forward threads alike (one lock).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: Labels) -> list[str]:
        out, running = [], 0
        for bound, count in zip([*map(_number, self.buckets), "+Inf"], self.counts):
            running += count
            le = 'le="' + bound + '"'
            out.append(f"{name}_bucket{_labels(labels, le)} {running}")
        out.append(f"{name}_sum{_labels(labels)} {_number(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {running}")
        return out


class Metrics:
    """The server's series; `render()` is the /metrics body. Gauges are read when rendered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = {}
        self._inputs = 0
        self._batch_errors = 0
        self._latency: dict[Labels, _Histogram] = {}
        self._batch_size = _Histogram(SIZE_BUCKETS)
        self._batch_tokens = _Histogram(TOKEN_BUCKETS)
        self._queue_seconds = _Histogram(LATENCY_BUCKETS)
        self._forward_seconds = _Histogram(LATENCY_BUCKETS)
        self._queue_depth: Callable[[], int] = lambda: 0
        self._in_flight: Callable[[], int] = lambda: 0

    def bind(self, queue_depth: Callable[[], int], in_flight: Callable[[], int]) -> None:
        """Where the gauges are read from when /metrics is rendered."""
        self._queue_depth, self._in_flight = queue_depth, in_flight

    def request(self, route: str, status: int, seconds: float) -> None:
        key = (("route", route), ("status", str(status)))
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            self._latency.setdefault((("route", route),), _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, size: int, tokens: int, waited: Sequence[float], seconds: float, failed: bool) -> None:
        with self._lock:
            self._batch_size.observe(size)
            self._batch_tokens.observe(tokens)
            self._forward_seconds.observe(seconds)
            for w in waited:
                self._queue_seconds.observe(w)
            if failed:
                self._batch_errors += 1
            else:
                self._inputs += size

    def render(self) -> str:
        with self._lock:
            out = [
                "# HELP bertkit_requests_total HTTP requests answered, by route and status.",
                "# TYPE bertkit_requests_total counter",
            ]
            out += [f"bertkit_requests_total{_labels(k)} {v}" for k, v in sorted(self._requests.items())]
            out += _block("bertkit_inputs_total", "counter", "Inputs run through the model.", [str(self._inputs)])
            out += _block("bertkit_batch_errors_total", "counter", "Forwards that raised.", [str(self._batch_errors)])
            out += _block("bertkit_queue_depth", "gauge", "Inputs waiting for a forward.", [str(self._queue_depth())])
            out += _block("bertkit_in_flight", "gauge", "Requests being answered.", [str(self._in_flight())])
            out += [
                "# HELP bertkit_request_duration_seconds Time from a request's arrival to its answer.",
                "# TYPE bertkit_request_duration_seconds histogram",
            ]
            for labels, hist in sorted(self._latency.items()):
                out += hist.lines("bertkit_request_duration_seconds", labels)
            for name, what, hist in (
                ("bertkit_batch_size", "Inputs per forward.", self._batch_size),
                ("bertkit_batch_tokens", "Tokens (without padding) per forward.", self._batch_tokens),
                ("bertkit_queue_seconds", "Time an input waited for its forward.", self._queue_seconds),
                ("bertkit_forward_seconds", "Time one forward took.", self._forward_seconds),
            ):
                out += [f"# HELP {name} {what}", f"# TYPE {name} histogram", *hist.lines(name, ())]
        return "\n".join(out) + "\n"


def _block(name: str, kind: str, what: str, values: list[str]) -> list[str]:
    return [f"# HELP {name} {what}", f"# TYPE {name} {kind}", *(f"{name} {v}" for v in values)]
