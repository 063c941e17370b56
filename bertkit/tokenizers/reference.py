"""Reference implementations, written to be read: the lecture's algorithms, plainly and slowly.

bertkit's trainers (trainers.py) and encoder (sequence.py, assembly.py) are optimised: pair
statistics updated incrementally, heaps with lazy deletion, a cache of whole words, special
tokens laid out by list arithmetic. Each optimised path has a plain twin here, minbpe-sized, that
recounts everything at every step; the tests check that the two give the same result, so this
file is also the specification of the fast one.

* `train_bpe_reference`: merge the most frequent pair until the vocabulary is full.
* `train_wordpiece_reference`: merge the pair with the best likelihood gain (or ratio).
* `bpe_word_reference`: tokenize one word by replaying the merges, best rank first.
* `encode_reference`: a text through normalizer, pre-tokenizer, model and template, word by word.
"""

from __future__ import annotations

from collections import Counter
from math import log
from typing import Any

from bertkit.tokenizers.added_tokens import build_pattern, split_on_added
from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.bytelevel import byte_to_char_index
from bertkit.tokenizers.encoding import Encoding
from bertkit.tokenizers.pre_tokenizers import ByteLevel

Word = tuple[str, ...]  # a word as its current symbols


# a few helpers shared by both trainers ----------------------------------------------------------
def pair_counts(words: dict[Word, int]) -> Counter:
    """How often each pair of adjacent symbols occurs, over all words (weighted by word count)."""
    pairs: Counter = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            pairs[pair] += n
    return pairs


def symbol_counts(words: dict[Word, int]) -> Counter:
    symbols: Counter = Counter()
    for word, n in words.items():
        for s in word:
            symbols[s] += n
    return symbols


def merge(words: dict[Word, int], pair: tuple[str, str], new: str) -> dict[Word, int]:
    """Replace every occurrence of `pair` in every word by the symbol `new`, left to right."""
    out: dict[Word, int] = {}
    for word, n in words.items():
        symbols, i = [], 0
        while i < len(word):
            if word[i : i + 2] == pair:
                symbols.append(new)
                i += 2
            else:
                symbols.append(word[i])
                i += 1
        out[tuple(symbols)] = out.get(tuple(symbols), 0) + n
    return out


def _add(vocab: dict[str, int], token: str) -> None:
    vocab.setdefault(token, len(vocab))  # a token made twice (ab+c, a+bc) keeps its first id


# the trainers -----------------------------------------------------------------------------------
def train_bpe_reference(
    word_counts: dict[str, int], vocab_size: int, min_frequency: int = 2, special_tokens: tuple = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """BPE: start from the characters, merge the most frequent pair, repeat until full."""
    vocab: dict[str, int] = {}
    for token in [*special_tokens, *sorted({c for w in word_counts for c in w})]:
        _add(vocab, token)
    words = {tuple(w): n for w, n in word_counts.items() if w}  # each word as its characters
    merges = []
    while len(vocab) < vocab_size:
        pairs = {p: c for p, c in pair_counts(words).items() if c >= min_frequency}
        if not pairs:
            break
        # the most frequent pair; ties go to the pair holding the newest symbol
        a, b = max(pairs, key=lambda p: (pairs[p], max(vocab[p[0]], vocab[p[1]]), vocab[p[0]], -vocab[p[1]]))
        _add(vocab, a + b)
        merges.append((a, b))
        words = merge(words, (a, b), a + b)
    return vocab, merges


def train_wordpiece_reference(
    word_counts: dict[str, int],
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: tuple = (),
    prefix: str = "##",
    criterion: str = "likelihood",
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """WordPiece: merge the pair that most raises the likelihood of the training data.

    The lecture's score is p(ab) / (p(a) p(b)); the likelihood gain of merging is that log-ratio
    collected count(ab) times: count(ab) * log(N * count(ab) / (count(a) * count(b))), N the
    number of symbols. criterion="ratio" uses the bare count(ab) / (count(a) * count(b)).
    """
    alphabet = sorted({c for w in word_counts for c in w})
    vocab: dict[str, int] = {}
    for token in [*special_tokens, *alphabet, *(prefix + c for c in alphabet)]:
        _add(vocab, token)
    # each word as symbols: the first character as it is, the others marked as continuations
    words = {tuple([w[0]] + [prefix + c for c in w[1:]]): n for w, n in word_counts.items() if w}
    merges = []
    while len(vocab) < vocab_size:
        pairs = {p: c for p, c in pair_counts(words).items() if c >= min_frequency}
        if not pairs:
            break
        symbols = symbol_counts(words)
        n_symbols = sum(symbols.values())
        scores = {p: _wordpiece_score(p, c, symbols, n_symbols, vocab, criterion) for p, c in pairs.items()}
        a, b = max(scores, key=scores.__getitem__)
        new = a + b.removeprefix(prefix)  # "st" + "##em" -> "stem"
        _add(vocab, new)
        merges.append((a, b))
        words = merge(words, (a, b), new)
    return vocab, merges


def _wordpiece_score(
    p: tuple[str, str], c: int, symbols: Counter, n_symbols: int, vocab: dict[str, int], criterion: str
) -> tuple:
    ca, cb = symbols[p[0]], symbols[p[1]]
    if criterion == "ratio":
        gain = c / (ca * cb)
    else:
        gain = c * (log(c) - log(ca) - log(cb) + log(n_symbols))
    # ties: the higher count, then the pair holding the newest symbol
    return gain, c, max(vocab[p[0]], vocab[p[1]]), vocab[p[0]], -vocab[p[1]]


# encoding ---------------------------------------------------------------------------------------
def _model_pieces(model: Any, word: str) -> list[tuple[int, int, int]]:
    if not isinstance(model, BPE):
        return model.tokenize_word(word)  # WordPiece and WordLevel are plain already
    if model.ignore_merges and word in model.vocab:
        return [(model.vocab[word], 0, len(word))]
    return bpe_word_reference(model, word)


def bpe_word_reference(model: Any, word: str) -> list[tuple[int, int, int]]:
    """A BPE model's pieces of one word: merge the lowest-rank pair everywhere, repeat."""
    symbols, spans = model.initial_symbols(word)
    while len(symbols) > 1:
        ranked = [(model.ranks[p][0], p) for p in zip(symbols, symbols[1:]) if p in model.ranks]
        if not ranked:
            break
        pair = min(ranked)[1]
        new_symbols, new_spans, i = [], [], 0
        while i < len(symbols):
            if tuple(symbols[i : i + 2]) == pair:
                new_symbols.append(model.ranks[pair][1])
                new_spans.append((spans[i][0], spans[i + 1][1]))
                i += 2
            else:
                new_symbols.append(symbols[i])
                new_spans.append(spans[i])
                i += 1
        symbols, spans = new_symbols, new_spans
    return [(model.vocab[s], a, b) for s, (a, b) in zip(symbols, spans)]


def encode_reference(tok: Any, text: str, pair: str | None = None, add_special_tokens: bool = True) -> Encoding:
    """What `tok.encode(text, pair)` returns (no truncation or padding), computed plainly."""
    first = sequence_reference(tok, text)
    second = None if pair is None else sequence_reference(tok, pair)
    return tok.post_process(first, second, add_special_tokens)  # the template, the general way


def sequence_reference(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """One text -> (ids, offsets, word ids): added tokens cut out, each piece between them
    normalized char by char, split into words, and each word split by the model (uncached)."""
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    word_ids: list[int] = []
    raw = [t for t in tok.added_tokens if not t.normalized]
    normalized = [t for t in tok.added_tokens if t.normalized]
    for start, end, added in _split(text, raw):
        if added is not None:
            ids, offsets, word_ids = ids + [added.id], offsets + [(start, end)], word_ids + [_next_word(word_ids)]
            continue
        norm, origin = _normalize(tok.normalizer, text[start:end])
        for n_start, n_end, n_added in _split(norm, normalized):
            where = [start + i for i in origin[n_start:n_end]]  # original index of each char
            if n_added is not None:
                ids.append(n_added.id)
                offsets.append((where[0], where[-1] + 1))
                word_ids.append(_next_word(word_ids))
                continue
            first_word = _next_word(word_ids)
            for k, (w_ids, w_offsets) in enumerate(_words(tok, norm[n_start:n_end], where)):
                ids += w_ids
                offsets += w_offsets
                word_ids += [first_word + k] * len(w_ids)
    return ids, offsets, word_ids


def _split(text: str, tokens: list) -> list:
    """(start, end, added token or None) pieces of `text`."""
    pattern = build_pattern(tokens)
    return split_on_added(text, pattern, tokens) if pattern is not None else [(0, len(text), None)] * bool(text)


def _next_word(word_ids: list[int]) -> int:
    return word_ids[-1] + 1 if word_ids else 0


def _normalize(normalizer: Any, text: str) -> tuple[str, list[int]]:
    """Normalized text, and for each of its characters the index it came from in `text`."""
    if normalizer is None:
        return text, list(range(len(text)))
    out, origin = [], []
    for i, char in enumerate(text):
        replacement = normalizer.map_char(char)
        out.append(replacement)
        origin += [i] * len(replacement)
    return "".join(out), origin


def _words(tok: Any, norm: str, where: list[int]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Each word's (ids, offsets in the original text) for a piece of normalized text."""
    ends = [i + 1 for i in where]  # the end offset of each character
    pre = tok.pre_tokenizer
    if isinstance(pre, ByteLevel) and pre.add_prefix_space and norm and norm[0] != " ":
        norm, where, ends = " " + norm, [where[0]] + where, [where[0]] + ends  # the added space has no width
    out = []
    for word, start, end in zip(*pre.split(norm)):
        pieces = _model_pieces(tok.model, word)
        if isinstance(pre, ByteLevel):  # piece spans count bytes: map them to characters
            index = byte_to_char_index(norm[start:end])
            pieces = [(i, index[a], index[b - 1] + 1) for i, a, b in pieces]
        out.append(([i for i, _, _ in pieces], [(where[start + a], ends[start + b - 1]) for _, a, b in pieces]))
    return out
