"""Every text path runs in linear time: trailing whitespace, long words, long runs, huge lines.

Absolute times depend on the machine and its load, so the tests compare a text with one four
times as long. Its CPU time may grow at most 8x per step from 10k to 160k characters: a linear
path grows 4x, a quadratic one 16x, and 8x is the midpoint of the two on a log scale, so cache
effects of the larger texts on a loaded machine do not fail a linear path. The time is this
thread's only (threads an earlier test left running, or a library's spinning workers, count in
process time), after a garbage collection, the best of 3 rounds that visit every size in turn
(a change of load hits all sizes alike). Times below 2 ms count as 2 ms, where the timer's
resolution and the call overhead would dominate. When a step fails, 3 more rounds are measured
and the best times of all 6 are judged again: a quadratic path grows 16x per step however often
it is measured.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable

import pytest

from bertkit.tokenizers import Tokenizer
from bertkit.tokenizers.added_tokens import AddedToken

SIZES = (10_000, 40_000, 160_000)
FLOOR = 0.002
GROWTH = 8.0  # per 4x the characters: linear 4x, quadratic 16x


def assert_linear(fn: Callable[[str], object], make: Callable[[int], str]) -> list[float]:
    texts = [make(n) for n in SIZES]
    fn(texts[0])  # warm the caches (character tables, regex compilation)
    gc.collect()
    best = [float("inf")] * len(SIZES)
    for attempt in range(2):
        for _ in range(3):
            for k, text in enumerate(texts):
                start = time.thread_time()
                fn(text)
                best[k] = min(best[k], time.thread_time() - start)
        times = [max(t, FLOOR) for t in best]
        steps = [(n, a, b) for (n, a), b in zip(zip(SIZES, times), times[1:])]
        if all(b <= GROWTH * a for _, a, b in steps) or attempt == 1:
            break
    for n, a, b in steps:
        assert b <= GROWTH * a, f"{n} -> {4 * n} characters: {a * 1e3:.1f} ms -> {b * 1e3:.1f} ms (x{b / a:.1f})"
    return times


@pytest.fixture(scope="module")
def bytelevel(small_corpus) -> Tokenizer:
    return Tokenizer.train(small_corpus[:300], model="bytelevel", vocab_size=1500, show_progress=False)


@pytest.fixture(scope="module")
def bpe(small_corpus) -> Tokenizer:
    return Tokenizer.train(small_corpus[:300], model="bpe", vocab_size=1500, show_progress=False)


BERT_CASES = {
    "trailing spaces": lambda n: "paris" + " " * n,
    "trailing ideographic spaces": lambda n: "x" + "\u3000" * n,
    "trailing newlines and tabs": lambda n: "x" + "\n\t" * (n // 2),
    "one long word": lambda n: "a" * n,
    "a huge line of short words": lambda n: "ab, " * (n // 4),
    "accented letters (aligned offsets)": lambda n: "é x " * (n // 4),
    "CJK": lambda n: "字" * n,
}


@pytest.mark.parametrize("case", sorted(BERT_CASES))
def test_bert_encode_is_linear(bert_tok, case):
    assert_linear(bert_tok.encode, BERT_CASES[case])


def test_call_with_truncation_is_linear(bert_tok):
    """Truncation does not help by itself (pre-tokenization runs first): the path must be linear."""
    assert_linear(lambda t: bert_tok(t, truncation=True, max_length=128), lambda n: "paris" + " " * n)


def test_added_token_that_strips_spaces_is_linear(bert_tok):
    mask = AddedToken("<mask>", 103, lstrip=True, rstrip=True)  # RoBERTa's habit
    parts = (bert_tok.model, bert_tok.normalizer, bert_tok.pre_tokenizer, bert_tok.post_processor, bert_tok.decoder)
    tok = Tokenizer(*parts, added_tokens=bert_tok.added_tokens + [mask])
    assert tok.encode("a   <mask>  b", add_special_tokens=False).ids == [1037, 103, 1038]
    assert_linear(tok.encode, lambda n: " " * n + "x")
    assert_linear(tok.encode, lambda n: "x" + " " * n)


def test_wordpiece_without_a_word_length_cap_is_linear(bert_tok, tmp_path):
    data = bert_tok.to_json()
    data["model"]["max_input_chars_per_word"] = 10**9  # every word is split, however long
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    tok = Tokenizer.from_file(tmp_path / "tokenizer.json")
    assert tok.tokenize("aaaaaaaaaaaa")[:2] == ["aaa", "##aa"]
    assert_linear(tok.encode, lambda n: "a" * n)


@pytest.mark.parametrize(
    "make",
    [lambda n: "ab" * (n // 2), lambda n: "x" + " " * n, lambda n: "字" * n, lambda n: "the " * (n // 4)],
    ids=["long word", "run of spaces", "CJK run", "many words"],
)
def test_byte_level_bpe_is_linear(bytelevel, make):
    assert_linear(bytelevel.encode, make)


def test_bpe_long_word_is_linear(bpe):
    assert_linear(bpe.encode, lambda n: "the" * (n // 3))


def test_a_megabyte_of_spaces_finishes(bert_tok, bytelevel):
    spaces = " " * 1_000_000
    start = time.process_time()
    assert bert_tok.encode(spaces).tokens == ["[CLS]", "[SEP]"]
    assert bert_tok(spaces + "paris" + spaces, truncation=True)["input_ids"] == [101, 3000, 102]
    assert time.process_time() - start < 5.0
    enc = bytelevel.encode(spaces, add_special_tokens=False)
    assert bytelevel.decode(enc.ids) == spaces  # byte level keeps every space
