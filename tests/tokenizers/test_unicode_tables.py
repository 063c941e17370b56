"""Every code point is normalized and pre-tokenized as Hugging Face `tokenizers` does it.

bertkit's character classes (controls, marks, punctuation, lowercase) come from
bertkit/tokenizers/unicode_tables.py, generated from the peer by tools/hf_unicode_tables.py; these
tests ask the peer again about all 1,112,064 code points (surrogates aside: the peer cannot take
them) and fail when its answers and the tables part, e.g. after an upgrade of `tokenizers`.
Each character sits between two "a"s, so none can combine with or reorder against its neighbour.
"""

from __future__ import annotations

import pytest
from peers import peer

from bertkit.tokenizers import normalizers, pre_tokenizers

pytestmark = pytest.mark.slow  # about a minute: over a million code points, each way

CHARS = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
ALL = "a" + "a".join(CHARS) + "a"
BERT_FLAGS = [
    {"clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
    {"clean_text": True, "handle_chinese_chars": True, "strip_accents": False, "lowercase": False},
    {"clean_text": False, "handle_chinese_chars": False, "strip_accents": True, "lowercase": False},
]


def first_difference(ours: str, theirs: str) -> str:
    i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return f"at {i}: ours {ours[max(0, i - 3) : i + 3]!r}, theirs {theirs[max(0, i - 3) : i + 3]!r}"


@pytest.mark.parametrize("flags", BERT_FLAGS, ids=["uncased", "cased", "strip accents only"])
def test_bert_normalizer_on_every_code_point(flags):
    theirs = peer("tokenizers").normalizers.BertNormalizer(**flags).normalize_str(ALL)
    ours = normalizers.BertNormalizer(**flags).normalize_str(ALL)
    assert ours == theirs, first_difference(ours, theirs)


@pytest.mark.parametrize("name", ["Lowercase", "StripAccents", "NFD"])
def test_simple_normalizers_on_every_code_point(name):
    theirs = getattr(peer("tokenizers").normalizers, name)().normalize_str(ALL)
    ours = getattr(normalizers, name)().normalize_str(ALL)
    assert ours == theirs, first_difference(ours, theirs)


def test_bert_pre_tokenizer_on_every_code_point():
    words = [w for w, _ in peer("tokenizers").pre_tokenizers.BertPreTokenizer().pre_tokenize_str(ALL)]
    assert pre_tokenizers.BertPreTokenizer().split(ALL)[0] == words


@pytest.mark.parametrize("separator", ["a", "1", " "])
def test_byte_level_split_on_every_code_point(separator):
    """GPT-2's split tells letters, digits, spaces and the rest apart: each between letters,
    between digits, and between spaces."""
    text = separator + separator.join(CHARS) + separator
    theirs = peer("tokenizers").pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)
    assert pre_tokenizers.ByteLevel().split(text)[0] == [w for w, _ in theirs]


def test_whitespace_split_on_every_code_point():
    words = [w for w, _ in peer("tokenizers").pre_tokenizers.Whitespace().pre_tokenize_str(ALL)]
    assert pre_tokenizers.Whitespace().split(ALL)[0] == words


def test_the_ascii_pattern_of_gpt2_split_equals_the_full_one():
    fast, full = pre_tokenizers.gpt2_pattern(ascii_only=True), pre_tokenizers.gpt2_pattern()
    ascii_chars = [chr(i) for i in range(128)]
    for a in ascii_chars:
        for text in (f"x{a}y", f"1{a}2", f" {a} ", f"'{a}s", a * 3):
            assert fast.findall(text) == full.findall(text), text
