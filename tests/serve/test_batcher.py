"""The dynamic batcher alone: budgets, order, requests spanning batches, failures, timeouts, stop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bertkit.serve.batcher import Batcher, QueueFull, Stopping


def _batcher(run, **limits) -> Batcher:
    options = {"max_batch_tokens": 1000, "max_batch_requests": 64, "max_queue": 100} | limits
    return Batcher(run, **options)


def _echo(batches: list):
    def run(values, key):
        batches.append((list(values), key))
        return [f"out:{v}" for v in values]

    return run


def test_a_request_spans_batches_and_comes_back_in_order():
    batches: list = []
    b = _batcher(_echo(batches), max_batch_requests=2)

    async def go():
        return await b.submit(["a", "b", "c", "d", "e"], [3, 3, 3, 3, 3])

    b.start()
    try:
        assert asyncio.run(go()) == ["out:a", "out:b", "out:c", "out:d", "out:e"]
    finally:
        b.stop()
    assert [len(values) for values, _ in batches] == [2, 2, 1]


def test_the_token_budget_closes_a_batch_and_each_batch_is_sorted_by_length():
    batches: list = []
    gate = threading.Event()

    def run(values, key):
        gate.wait(5)
        return _echo(batches)(values, key)

    b = _batcher(run, max_batch_tokens=10)

    async def go():
        first = asyncio.create_task(b.submit(["warm"], [1]))  # holds the thread while the rest queue up
        await asyncio.sleep(0.05)
        rest = asyncio.create_task(b.submit(["x6", "y3", "z4", "w2"], [6, 3, 4, 2]))
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await rest

    b.start()
    try:
        first, rest = asyncio.run(go())
    finally:
        b.stop()
    assert rest == ["out:x6", "out:y3", "out:z4", "out:w2"]
    # x6 + y3 = 9 fits 10, + z4 would not: the batch closes there, in arrival order; sorted inside
    assert [values for values, _ in batches[1:]] == [["y3", "x6"], ["w2", "z4"]]


def test_items_with_other_options_wait_for_a_batch_of_their_own():
    batches: list = []
    gate = threading.Event()

    def run(values, key):
        gate.wait(5)
        return _echo(batches)(values, key)

    b = _batcher(run)

    async def go():
        hold = asyncio.create_task(b.submit(["hold"], [1]))
        await asyncio.sleep(0.05)
        tasks = [
            asyncio.create_task(b.submit([v], [1], key=k)) for v, k in (("a", ()), ("b", (("top_k", 3),)), ("c", ()))
        ]
        await asyncio.sleep(0.05)
        gate.set()
        return await hold, [await t for t in tasks]

    b.start()
    try:
        _, outs = asyncio.run(go())
    finally:
        b.stop()
    assert outs == [["out:a"], ["out:b"], ["out:c"]]
    assert [(values, key) for values, key in batches[1:]] == [(["a", "c"], ()), (["b"], (("top_k", 3),))]


def test_a_waiting_thread_stops_waiting_once_nothing_more_arrives():
    # linger allows 3 s while the other thread's forward runs; nothing arrives after "a", so the
    # free thread runs it within ARRIVAL_GAP instead of waiting out the linger
    held = threading.Event()
    answered_at: list[float] = []

    def run(values, key):
        if values == ["hold"]:
            held.wait(10)
        return list(values)

    b = _batcher(run, workers=2, linger=3.0)

    async def go():
        hold = asyncio.create_task(b.submit(["hold"], [1]))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        assert await b.submit(["a"], [1]) == ["a"]
        answered_at.append(time.monotonic() - start)
        held.set()
        return await hold

    b.start()
    try:
        asyncio.run(go())
    finally:
        held.set()
        b.stop()
    assert answered_at[0] < 1.0, f"waited {answered_at[0]:.2f} s for inputs that were not coming"


def test_a_full_queue_refuses_the_whole_request():
    gate = threading.Event()

    def run(values, key):
        gate.wait(5)
        return list(values)

    b = _batcher(run, max_queue=3)

    async def go():
        hold = asyncio.create_task(b.submit(["hold"], [1]))  # taken by the thread: no longer queued
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(b.submit(["a", "b"], [1, 1]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit(["c", "d"], [1, 1])  # 2 waiting + 2 > 3
        assert b.depth() == 2
        gate.set()
        return await hold, await waiting

    b.start()
    try:
        assert asyncio.run(go()) == (["hold"], ["a", "b"])
    finally:
        b.stop()


def test_a_failing_forward_fails_its_batch_only_and_the_thread_goes_on():
    def run(values, key):
        if "boom" in values:
            raise RuntimeError("model exploded")
        return list(values)

    b = _batcher(run)

    async def go():
        with pytest.raises(RuntimeError, match="exploded"):
            await b.submit(["boom"], [1])
        return await b.submit(["fine"], [1])

    b.start()
    try:
        assert asyncio.run(go()) == ["fine"]
        assert b.alive()
    finally:
        b.stop()


def test_a_request_past_its_timeout_leaves_the_queue():
    gate = threading.Event()

    def run(values, key):
        gate.wait(5)
        return list(values)

    b = _batcher(run)

    async def go():
        hold = asyncio.create_task(b.submit(["hold"], [1]))
        await asyncio.sleep(0.05)
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            await b.submit(["late", "later"], [1, 1], timeout=0.05)
        assert b.depth() == 0  # its waiting inputs were withdrawn, not run for nobody
        gate.set()
        return await hold

    b.start()
    try:
        assert asyncio.run(go()) == ["hold"]
    finally:
        b.stop()


def test_stop_finishes_what_is_queued_then_refuses():
    b = _batcher(lambda values, key: list(values))

    async def go():
        return await b.submit(["a"], [1])

    b.start()
    assert asyncio.run(go()) == ["a"]
    b.stop()
    assert not b.alive()

    async def late():
        await b.submit(["b"], [1])

    with pytest.raises(Stopping):
        asyncio.run(late())


def test_a_wrong_number_of_rows_is_a_failure_not_a_silent_misalignment():
    b = _batcher(lambda values, key: list(values)[:-1])

    async def go():
        await b.submit(["a", "b"], [1, 1])

    b.start()
    try:
        with pytest.raises(RuntimeError, match="answered 1 rows for 2 inputs"):
            asyncio.run(go())
    finally:
        b.stop()


def test_a_free_thread_waits_for_a_fuller_batch_only_while_another_forward_runs(monkeypatch):
    monkeypatch.setattr("bertkit.serve.batcher.ARRIVAL_GAP", 1.0)  # arrivals 50 ms apart still count as a stream
    batches: list = []
    gate = threading.Event()

    def run(values, key):
        if values == ["hold"]:
            gate.wait(5)
        return _echo(batches)(values, key)

    b = _batcher(run, max_batch_requests=4, linger=0.5, workers=2)

    async def go():
        hold = asyncio.create_task(b.submit(["hold"], [1]))  # thread 1 is busy with it
        await asyncio.sleep(0.05)
        first = asyncio.create_task(b.submit(["a"], [1]))  # thread 2 lingers instead of running "a" alone
        await asyncio.sleep(0.05)
        rest = asyncio.create_task(b.submit(["b", "c", "d"], [1, 1, 1]))  # the batch is full: no more waiting
        outs = await first, await rest
        gate.set()
        await hold
        return outs

    b.start()
    try:
        assert asyncio.run(go()) == (["out:a"], ["out:b", "out:c", "out:d"])
    finally:
        b.stop()
    assert [values for values, _ in batches if values != ["hold"]] == [["a", "b", "c", "d"]]


def test_a_lone_request_never_waits():
    b = _batcher(lambda values, key: list(values), linger=5.0, workers=2)

    async def go():
        start = time.monotonic()
        await b.submit(["a"], [1])
        return time.monotonic() - start

    b.start()
    try:
        assert asyncio.run(go()) < 2.0  # no other forward ran: the 5 s linger did not apply
    finally:
        b.stop()
