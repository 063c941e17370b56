"""The merge engine shared by the BPE and WordPiece trainers: words as symbol strings, with
pair statistics kept up to date incrementally (the corpus is never re-scanned).

Each distinct word is a Python string with ONE CHARACTER PER SYMBOL (symbol id i is chr(i)), so
merging the pair (a, b) into c in a word is `word.replace(a + b, c)` -- left to right, without
overlaps, exactly BPE's rule -- done in C. For every pair the engine keeps its count (weighted by
word frequency) and the set of words it occurs in; a merge visits only those words and updates
the counts of the pairs around each merged spot.
"""

from __future__ import annotations

from collections import defaultdict
from operator import add

_SURROGATES = 0xD800


def sym(i: int) -> str:
    """Symbol id -> its one-character code (skipping the surrogate block, which str cannot hold)."""
    return chr(i if i < _SURROGATES else i + 0x800)


def sym_id(c: str) -> int:
    i = ord(c)
    return i if i < _SURROGATES else i - 0x800


class PairStats:
    def __init__(self, words: list[str], freqs: list[int]) -> None:
        self.words = words
        self.freqs = freqs
        self.count: dict[str, int] = defaultdict(int)  # pair (2-char string) -> weighted count
        self.where: dict[str, set[int]] = defaultdict(set)  # pair -> indices of words holding it
        count, where = self.count, self.where
        for wi, (w, f) in enumerate(zip(words, freqs)):
            for pair in map(add, w[:-1], w[1:]):
                count[pair] += f
                where[pair].add(wi)

    def symbol_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for w, f in zip(self.words, self.freqs):
            for c in w:
                counts[c] += f
        return counts

    def merge(self, pair: str, new: str) -> tuple[dict[str, int], int]:
        """Replace `pair` by the symbol `new` in every word holding it.

        Returns (change of count per touched pair, number of occurrences merged).
        """
        words, freqs, count, where = self.words, self.freqs, self.count, self.where
        delta: dict[str, int] = defaultdict(int)
        merged = 0
        for wi in where.pop(pair, ()):
            old = words[wi]
            if pair not in old:
                continue  # stale entry: an earlier merge consumed it
            w = old.replace(pair, new)
            words[wi] = w
            f = freqs[wi]
            merged += (len(old) - len(w)) * f
            for p in map(add, old[:-1], old[1:]):
                delta[p] -= f
            for p in map(add, w[:-1], w[1:]):
                delta[p] += f
                if new in p:
                    where[p].add(wi)
        changed = {}
        for p, d in delta.items():
            if d:
                c = count[p] + d
                if c:
                    count[p] = c
                else:
                    del count[p]
                changed[p] = d
        count.pop(pair, None)
        return changed, merged
