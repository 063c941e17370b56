"""Trainers: learn a vocabulary (and merges) from word counts -- nothing else.

They take `{word: count}` and return `(vocab, merges)`; building a tokenizer around them (the
normalizer, pre-tokenizer, post-processor and decoder that go with each model) is the recipes'
job (recipes.py). Plain, slow versions of the two merge loops, written to be read, are in
reference.py; the tests check that both learn the same merges.

The lecture's two criteria for which pair (a, b) to merge next:

* BPE (and byte-level BPE): the most frequent pair, count(ab).
* WordPiece: the pair that most raises the likelihood of the training data under a unigram
  model, count(ab) / (count(a) * count(b)) -- frequent together, rare apart. A merge changes
  count(a) and count(b), so the scores of every pair holding a or b are refreshed too.

Both pick the best pair from a heap with lazy deletion: an entry whose count or score is out of
date is re-queued when it reaches the top. Ties go to the pair with the newest symbol, so a merge
tends to grow the token just made (the lecture's st, me, men).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from math import log
from typing import Any

from tqdm.auto import tqdm

from bertkit.errors import BertkitError
from bertkit.tokenizers.merges import PairStats, sym, sym_id


def alphabet_of(word_counts: Counter, limit: int | None, initial: Sequence[str] = ()) -> list[str]:
    chars: Counter = Counter()
    for word, n in word_counts.items():
        for c in word:
            chars[c] += n
    keep = [c for c, _ in chars.most_common(limit)] if limit is not None else list(chars)
    return sorted(set(keep) | set(initial))


def check_size(vocab_size: int, base: int, n_alpha: int, n_special: int) -> None:
    if vocab_size < base:
        raise BertkitError(
            f"vocab_size={vocab_size} is smaller than the alphabet ({n_alpha} symbols + {n_special} special tokens "
            f"= {base}); raise vocab_size or pass limit_alphabet"
        )


def _progress(total: int, show: bool, desc: str) -> Any:
    return tqdm(total=max(total, 0), desc=desc, unit=" merges", disable=not show)


def train_bpe(
    word_counts: Counter,
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (),
    limit_alphabet: int | None = None,
    initial_alphabet: Sequence[str] = (),
    continuing_subword_prefix: str = "",
    end_of_word_suffix: str = "",
    show_progress: bool = True,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Frequency-merge BPE -> (vocab, merges in the order learned)."""
    alphabet = alphabet_of(word_counts, limit_alphabet, initial_alphabet)
    vocab: dict[str, int] = {}
    for t in list(special_tokens) + alphabet:
        vocab.setdefault(t, len(vocab))
    check_size(vocab_size, len(vocab), len(alphabet), len(special_tokens))
    prefix, suffix = continuing_subword_prefix, end_of_word_suffix

    def symbol(s: str) -> str:
        if s not in vocab:
            vocab[s] = len(vocab)
        return sym(vocab[s])

    allowed = set(alphabet)
    words: list[str] = []
    freqs: list[int] = []
    for word, n in word_counts.items():
        if not word or not allowed.issuperset(word):
            continue  # a word with a dropped (rare) character cannot be built from the alphabet
        last = len(word) - 1
        words.append(
            "".join(
                symbol((prefix if i and prefix else "") + c + (suffix if i == last and suffix else ""))
                for i, c in enumerate(word)
            )
        )
        freqs.append(n)
    if not words:
        raise BertkitError("the training data holds no words; pass non-empty text")
    tokens = {i: t for t, i in vocab.items()}
    stats = PairStats(words, freqs)
    merges: list[tuple[str, str]] = []

    def entry(p: str, c: int) -> tuple[int, int, int, str]:
        a, b = sym_id(p[0]), sym_id(p[1])
        return (-c, -max(a, b), -a, p)

    heap = [entry(p, c) for p, c in stats.count.items() if c >= min_frequency]
    heapq.heapify(heap)
    bar = _progress(vocab_size - len(vocab), show_progress, "BPE merges")
    cut = len(prefix)
    with bar:
        while len(vocab) < vocab_size and heap:
            negc, _, _, p = heapq.heappop(heap)
            c = stats.count.get(p, 0)
            if c != -negc:  # out of date: re-queue with the true count
                if c >= min_frequency:
                    heapq.heappush(heap, entry(p, c))
                continue
            a, b = tokens[sym_id(p[0])], tokens[sym_id(p[1])]
            merged = a + (b[cut:] if cut and b.startswith(prefix) else b)
            if merged not in vocab:
                vocab[merged] = len(vocab)
                tokens[vocab[merged]] = merged
                bar.update(1)
            merges.append((a, b))
            new = sym(vocab[merged])
            changed, _ = stats.merge(p, new)
            for q, d in changed.items():
                if d > 0 and new in q:
                    cq = stats.count[q]
                    if cq >= min_frequency:
                        heapq.heappush(heap, entry(q, cq))
    return vocab, merges


_LOG_TABLE = [0.0] + [log(n) for n in range(1, 1 << 16)]  # log(n) of small counts: a lookup beats a call


def train_wordpiece(
    word_counts: Counter,
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (),
    limit_alphabet: int | None = None,
    initial_alphabet: Sequence[str] = (),
    prefix: str = "##",
    show_progress: bool = True,
    criterion: str = "likelihood",
    tolerance: float = 1e-3,
    park_pairs: bool = True,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Likelihood-merge WordPiece -> (vocab, merges in the order learned). Pieces inside a word
    carry `prefix`; tokenizing uses the vocabulary only (longest match first).

    criterion="likelihood" merges the pair whose merge most raises the log-likelihood of the
    training data under a unigram model of the symbols: count(ab) * log(N * count(ab) /
    (count(a) * count(b))), N the number of symbols -- the ratio p(ab) / (p(a) p(b)) of the
    lecture, weighed by how often the gain is collected. criterion="ratio" maximises the ratio
    count(ab) / (count(a) * count(b)) alone; it prefers pairs of rare symbols so strongly that
    "the" stays "th ##e" even in a 30,000-piece vocabulary (see bench/train_tokenizer.py).

    Merging (a, b) lowers count(a) and count(b), which raises the score of every other pair
    holding a or b. Re-scoring all of them after every merge is exact but slow (frequent pieces
    such as "##e" sit in thousands of pairs), so a symbol's pairs are re-scored once its count
    has fallen by more than `tolerance` (relative) since they were last scored: each merge
    picks a pair within a factor (1 + tolerance)^2 of the best ratio. tolerance=0 is exact.
    `park_pairs` sets aside pairs that cannot win soon (see _PairQueue); with tolerance=0 and
    park_pairs=False the merges are exactly those of `reference.train_wordpiece_reference`.
    """
    if criterion not in ("likelihood", "ratio"):
        raise BertkitError(f"criterion={criterion!r} is not 'likelihood' or 'ratio'")
    alphabet = alphabet_of(word_counts, limit_alphabet, initial_alphabet)
    vocab: dict[str, int] = {}
    # every character both word-initial and as a continuation, so no seen character is [UNK]
    for t in list(special_tokens) + alphabet + [prefix + c for c in alphabet]:
        vocab.setdefault(t, len(vocab))
    check_size(vocab_size, len(vocab), 2 * len(alphabet), len(special_tokens))
    first = {c: sym(vocab[c]) for c in alphabet}
    inner = {c: sym(vocab[prefix + c]) for c in alphabet}
    allowed = set(alphabet)
    words: list[str] = []
    freqs: list[int] = []
    for word, n in word_counts.items():
        if word and allowed.issuperset(word):
            words.append(first[word[0]] + "".join(map(inner.__getitem__, word[1:])))
            freqs.append(n)
    if not words:
        raise BertkitError("the training data holds no words; pass non-empty text")
    tokens = {i: t for t, i in vocab.items()}
    queue = _PairQueue(PairStats(words, freqs), vocab_size, min_frequency, criterion, tolerance, park_pairs)
    merges: list[tuple[str, str]] = []
    cut = len(prefix)
    with _progress(vocab_size - len(vocab), show_progress, "WordPiece merges") as bar:
        while len(vocab) < vocab_size:
            pair = queue.pop_best()
            if pair is None:
                break
            a, b = tokens[sym_id(pair[0])], tokens[sym_id(pair[1])]
            merged = a + (b[cut:] if b.startswith(prefix) else b)
            if merged not in vocab:
                vocab[merged] = len(vocab)
                tokens[vocab[merged]] = merged
                bar.update(1)
            merges.append((a, b))
            queue.merge(pair, vocab[merged])
    return vocab, merges


class _PairQueue:
    """WordPiece's candidate pairs, best score first: a heap with lazy deletion.

    The heap holds (-score, -count, tie-break, pair) entries; an entry goes stale when its pair's
    count, a symbol count or N changes, and is re-checked when it reaches the top. Scores of
    pairs outside the merged symbols only fall (N falls), so a fresh entry that still beats the
    best stored one is the best pair. Pairs holding a merged symbol rise, and are re-scored
    (`_rescore`) once the symbol's count fell by more than `tolerance` since their last scoring.

    Parking (likelihood only): a pair's gain can never exceed count * log(N0 / count), since
    count(a), count(b) >= count(ab) and N <= N0. A pair whose bound is below half the last
    merge's gain is set aside unscored until the best gain falls to its bound.
    """

    def __init__(
        self, stats: PairStats, vocab_size: int, min_frequency: int, criterion: str, tolerance: float, park: bool
    ) -> None:
        self.stats, self.count = stats, stats.count
        self.min_frequency, self.tolerance = min_frequency, tolerance
        self.ratio = criterion == "ratio"
        self.park = park and not self.ratio
        self.symbol_count = [0] * (vocab_size + 1)  # by symbol id
        for symbol, n in stats.symbol_counts().items():
            self.symbol_count[sym_id(symbol)] = n
        self.scored_at = list(self.symbol_count)  # each symbol's count when its pairs were last scored
        self.log_count = [log(n) if n > 0 else 0.0 for n in self.symbol_count]
        self.n_symbols = sum(self.symbol_count)  # N, the length of the training data in symbols
        self.log_n0 = log(self.n_symbols)
        self.info: dict[str, tuple[int, int, int]] = {}  # pair -> (id a, id b, tie-break key)
        self.pairs_of: dict[int, set[str]] = {}  # symbol id -> the pairs it is part of
        self.parked: list[tuple[float, str]] = []  # (-bound on the gain, pair)
        self.park_set: set[str] = set()
        self.last_score = 0.0
        for p, c in self.count.items():
            if c >= min_frequency:
                self._register(p)
        self.heap = [self._entry(p, c) for p, c in self.count.items() if c >= min_frequency]
        heapq.heapify(self.heap)

    def _register(self, p: str) -> None:
        """Note a pair that can be merged (count >= min_frequency) under both its symbols."""
        if p not in self.info:
            ia, ib = sym_id(p[0]), sym_id(p[1])
            self.info[p] = (ia, ib, -((max(ia, ib) << 21) | ia))  # ties: the newest symbol first
        ia, ib, _ = self.info[p]
        self.pairs_of.setdefault(ia, set()).add(p)
        self.pairs_of.setdefault(ib, set()).add(p)

    def _entry(self, p: str, c: int) -> tuple[float, int, int, str]:
        """Heap entry of a pair: best score first, then higher count, then newest symbol."""
        ia, ib, tb = self.info[p]
        if self.ratio:
            return (-c / (self.symbol_count[ia] * self.symbol_count[ib]), -c, tb, p)
        log_n = log(self.n_symbols)
        return (-c * (log(c) - self.log_count[ia] - self.log_count[ib] + log_n), -c, tb, p)

    def pop_best(self) -> str | None:
        """The pair to merge next (None when no pair occurs min_frequency times)."""
        heap, count = self.heap, self.count
        while heap or self.parked:
            if not heap:  # only parked pairs are left: bring them all back
                self._unpark(float("-inf"))
                continue
            top = heapq.heappop(heap)
            p = top[3]
            c = count.get(p, 0)
            if c < self.min_frequency:
                continue
            fresh = self._entry(p, c)
            if fresh != top and heap and fresh > heap[0]:
                heapq.heappush(heap, fresh)  # out of date, and no longer the best
                continue
            if self.parked and -self.parked[0][0] >= -fresh[0]:  # a parked pair might beat it
                self._unpark(-fresh[0])
                heapq.heappush(heap, fresh)
                continue
            self.last_score = -fresh[0]
            return p
        return None

    def _unpark(self, score: float) -> None:
        """Score again every parked pair whose bound reaches `score`."""
        while self.parked and -self.parked[0][0] >= score:
            _, q = heapq.heappop(self.parked)
            self.park_set.discard(q)
            cq = self.count.get(q, 0)
            if cq >= self.min_frequency:
                self._register(q)
                heapq.heappush(self.heap, self._entry(q, cq))

    def merge(self, p: str, new_id: int) -> None:
        """Merge the pair everywhere, update the counts, and re-score the pairs that rose."""
        ia, ib, _ = self.info[p]
        new = sym(new_id)
        changed, n_merged = self.stats.merge(p, new)
        self.symbol_count[ia] -= n_merged
        self.symbol_count[ib] -= n_merged
        self.symbol_count[new_id] += n_merged
        self.n_symbols -= n_merged
        for s in (ia, ib, new_id):
            self.log_count[s] = log(self.symbol_count[s]) if self.symbol_count[s] > 0 else 0.0
        for q, d in changed.items():
            if d > 0 and new in q and self.count[q] >= self.min_frequency:
                self._register(q)
        if len(self.heap) > 4 * len(self.count) + 100_000:  # mostly stale entries: rebuild
            self.heap = [
                self._entry(q, cq)
                for q, cq in self.count.items()
                if cq >= self.min_frequency and q not in self.park_set
            ]
            heapq.heapify(self.heap)
            self.scored_at = list(self.symbol_count)
            return
        for s in (ia, ib, new_id):
            n = self.symbol_count[s]
            if n and (s == new_id or self.scored_at[s] > n * (1.0 + self.tolerance)):
                self.scored_at[s] = n
                self._rescore(s)

    def _rescore(self, s: int) -> None:
        """Push fresh entries for every pair holding symbol s (the hottest loop of training)."""
        count, info, symbol_count, log_count = self.count, self.info, self.symbol_count, self.log_count
        log_n, log_n0, logs = log(self.n_symbols), self.log_n0, _LOG_TABLE
        park_below = self.last_score - 0.5 * abs(self.last_score)
        dead = []
        for q in self.pairs_of.get(s, ()):
            cq = count.get(q, 0)
            if cq < self.min_frequency:  # pair counts only fall: it cannot be merged any more
                dead.append(q)
                continue
            qa, qb, tb = info[q]
            if self.ratio:
                key = -cq / (symbol_count[qa] * symbol_count[qb])
            else:
                log_c = logs[cq] if cq < len(logs) else log(cq)
                bound = cq * (log_n0 - log_c)
                if self.park and bound < park_below:
                    dead.append(q)
                    self.park_set.add(q)
                    heapq.heappush(self.parked, (-bound, q))
                    continue
                key = -cq * (log_c - log_count[qa] - log_count[qb] + log_n)
            heapq.heappush(self.heap, (key, -cq, tb, q))
        for q in dead:
            self.pairs_of[sym_id(q[0])].discard(q)
            self.pairs_of[sym_id(q[1])].discard(q)


def train_wordlevel(
    word_counts: Counter,
    vocab_size: int,
    min_frequency: int = 1,
    special_tokens: Sequence[str] = (),
) -> dict[str, int]:
    """Word-level vocabulary: the special tokens, then the most frequent words (ties in
    alphabetical order) that occur at least `min_frequency` times, up to `vocab_size` tokens."""
    vocab: dict[str, int] = {}
    for t in special_tokens:
        vocab.setdefault(t, len(vocab))
    if vocab_size < len(vocab):
        raise BertkitError(f"vocab_size={vocab_size} is smaller than the {len(vocab)} special tokens; raise it")
    ranked = sorted((w for w, n in word_counts.items() if n >= min_frequency), key=lambda w: (-word_counts[w], w))
    for word in ranked:
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(word, len(vocab))
    return vocab
