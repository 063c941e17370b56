"""encode_batch over forked processes never hangs and never mixes batches: two threads at once
get their own results, a worker that dies or stalls is replaced by encoding its share here."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bertkit.tokenizers import batch


@pytest.fixture
def texts(corpus_paragraphs) -> list[str]:
    return (corpus_paragraphs * 2)[:2400]


@pytest.fixture
def fork_anyway(monkeypatch):
    """Fork even if the test process happens to run another thread (pytest plugins may)."""
    monkeypatch.setattr(batch.threading, "active_count", lambda: 1)


def test_two_threads_at_once_each_get_the_serial_result(bert_tok, texts):
    halves = [texts[:1200] * 2, texts[1200:] * 2]
    expected = [[e.ids for e in bert_tok.encode_batch(h, num_workers=1)] for h in halves]
    results: dict[int, list] = {}

    def run(k: int) -> None:
        for _ in range(2):
            results.setdefault(k, []).append([e.ids for e in bert_tok.encode_batch(halves[k], num_workers=2)])

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "encode_batch hung"
    for k in (0, 1):
        assert results[k] == [expected[k]] * 2


def test_a_dead_worker_is_replaced(bert_tok, texts, fork_anyway, caplog):
    parent = os.getpid()

    def encode_one(text, pair):
        if os.getpid() != parent:
            os._exit(3)  # the worker dies without answering
        return bert_tok.encode(text, pair)

    with caplog.at_level("WARNING", logger="bertkit"):
        out = batch.encode_many(encode_one, texts, None, bert_tok.id_table, 2)
    assert [e.ids for e in out] == [bert_tok.encode(t).ids for t in texts]
    assert "died" in caplog.text


def test_a_stalled_worker_is_killed_after_the_grace_time(bert_tok, texts, fork_anyway, monkeypatch, caplog):
    monkeypatch.setattr(batch, "WORKER_GRACE_SECONDS", 0.5)
    parent = os.getpid()

    def encode_one(text, pair):
        if os.getpid() != parent:
            time.sleep(3600)  # a worker stuck forever
        return bert_tok.encode(text, pair)

    start = time.monotonic()
    with caplog.at_level("WARNING", logger="bertkit"):
        out = batch.encode_many(encode_one, texts, None, bert_tok.id_table, 2)
    assert time.monotonic() - start < 60
    assert [e.offsets for e in out] == [bert_tok.encode(t).offsets for t in texts]
    assert "did not answer in time" in caplog.text


def test_without_fork_the_batch_is_encoded_here(bert_tok, texts, monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    out = bert_tok.encode_batch(texts, num_workers=2)
    assert [e.ids for e in out] == [bert_tok.encode(t).ids for t in texts]


def test_bad_worker_count_in_the_environment(monkeypatch):
    monkeypatch.setenv("BERTKIT_NUM_WORKERS", "two")
    with pytest.raises(batch.BertkitError, match="BERTKIT_NUM_WORKERS"):
        batch.default_workers()
