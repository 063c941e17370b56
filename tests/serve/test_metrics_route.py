"""/metrics' text: Prometheus exposition format, cumulative buckets, counts that add up."""

from __future__ import annotations

import re

from bertkit.serve.metrics import Metrics


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert match, f"{series} not in the text"
    return float(match.group(1))


def test_requests_and_latency_histogram_per_route():
    m = Metrics()
    m.request("/embed", 200, 0.003)
    m.request("/embed", 200, 0.2)
    m.request("/embed", 429, 0.001)
    text = m.render()
    assert _value(text, 'bertkit_requests_total{route="/embed",status="200"}') == 2
    assert _value(text, 'bertkit_requests_total{route="/embed",status="429"}') == 1
    # buckets are cumulative: <= 5 ms holds 2 of the 3, +Inf all 3
    assert _value(text, 'bertkit_request_duration_seconds_bucket{route="/embed",le="0.005"}') == 2
    assert _value(text, 'bertkit_request_duration_seconds_bucket{route="/embed",le="0.25"}') == 3
    assert _value(text, 'bertkit_request_duration_seconds_bucket{route="/embed",le="+Inf"}') == 3
    assert _value(text, 'bertkit_request_duration_seconds_count{route="/embed"}') == 3
    assert abs(_value(text, 'bertkit_request_duration_seconds_sum{route="/embed"}') - 0.204) < 1e-9


def test_batches_gauges_and_failures():
    m = Metrics()
    m.bind(lambda: 7, lambda: 3)
    m.batch(size=5, tokens=60, waited=[0.01] * 5, seconds=0.02, failed=False)
    m.batch(size=2, tokens=10, waited=[0.01] * 2, seconds=0.02, failed=True)
    text = m.render()
    assert _value(text, "bertkit_queue_depth") == 7
    assert _value(text, "bertkit_in_flight") == 3
    assert _value(text, "bertkit_inputs_total") == 5  # the failed batch's inputs were not answered
    assert _value(text, "bertkit_batch_errors_total") == 1
    assert _value(text, 'bertkit_batch_size_bucket{le="4"}') == 1
    assert _value(text, 'bertkit_batch_size_bucket{le="8"}') == 2
    assert _value(text, "bertkit_queue_seconds_count") == 7
    for name in ("bertkit_batch_size", "bertkit_batch_tokens", "bertkit_queue_seconds", "bertkit_forward_seconds"):
        assert f"# TYPE {name} histogram" in text


def test_every_line_is_a_comment_or_a_sample():
    m = Metrics()
    m.request('/we"ird\\path', 200, 0.1)  # label values are escaped
    sample = re.compile(r'^[a-z_]+(\{([a-z]+="([^"\\]|\\.)*",?)+\})? [0-9.e+-]+$')
    for line in m.render().splitlines():
        assert line.startswith("# ") or sample.match(line), line
