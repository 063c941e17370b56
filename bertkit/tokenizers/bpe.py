"""BPE: split a word into characters, then replay the learned merges, lowest rank first.

With merges st, me, men (the lecture's example), "mean" -> m e a n -> "me" a n: the pair (me, a)
was never learned, so the tokens are [me, a, n]. Options as in Hugging Face: a continuation
prefix on non-initial symbols ("##"), or an end-of-word suffix on the last one ("</w>");
`unk_token` replaces characters missing from the vocabulary (without it they are dropped).

The merges are replayed in Hugging Face's order -- the adjacent pair with the lowest rank first,
the leftmost among equals -- over a linked list of symbols, with the candidates queued by rank;
merging a pair queues the two pairs it forms with its neighbours. A word of n characters costs
about n steps, so a megabyte-long "word" (a run of letters, or of spaces, with nothing to split
it) is no slower per character than an ordinary one. The plain "find the best pair, merge it
everywhere, repeat" loop (n^2 steps) is `reference.bpe_word_reference`; both give the same pieces.
"""

from __future__ import annotations

import heapq

from bertkit.errors import BertkitError
from bertkit.tokenizers.models import Model, Pieces


class BPE(Model):
    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        unk_token: str | None = None,
        continuing_subword_prefix: str | None = None,
        end_of_word_suffix: str | None = None,
        fuse_unk: bool = False,
        ignore_merges: bool = False,
    ) -> None:
        super().__init__(vocab, unk_token)
        self.merges = [(a, b) for a, b in merges]
        self.prefix = continuing_subword_prefix or ""
        self.suffix = end_of_word_suffix or ""
        self.fuse_unk = fuse_unk
        self.ignore_merges = ignore_merges
        cut = len(self.prefix)
        # pair -> (rank, merged symbol); a pair listed twice keeps its last rank, as in Hugging Face
        self.ranks: dict[tuple[str, str], tuple[int, str]] = {}
        self.merged_by_rank: list[str] = []
        for rank, (a, b) in enumerate(self.merges):
            merged = a + (b[cut:] if cut and b.startswith(self.prefix) else b)
            if merged not in self.vocab:
                raise BertkitError(f"merge #{rank} {a!r} + {b!r} gives {merged!r}, which is not in the vocabulary")
            self.ranks[(a, b)] = (rank, merged)
            self.merged_by_rank.append(merged)

    @classmethod
    def from_json(cls, data: dict) -> BPE:
        """The "model" object of a tokenizer.json whose type is BPE."""
        vocab = data.get("vocab")
        if not isinstance(vocab, dict) or not vocab:
            raise BertkitError("model.vocab is missing or empty")
        if data.get("byte_fallback"):
            raise BertkitError("BPE byte_fallback is not supported; use a byte-level BPE instead")
        merges = []
        for item in data.get("merges") or []:
            pair = item.split(" ") if isinstance(item, str) else item
            if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                raise BertkitError(f"merge {item!r} is not a pair of tokens")
            merges.append((pair[0], pair[1]))
        options = {k: data.get(k) for k in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix")}
        for key, value in options.items():
            if value is not None and not isinstance(value, str):
                raise BertkitError(f"model.{key} must be a string or null, got {value!r}")
        return cls(
            vocab,
            merges,
            fuse_unk=bool(data.get("fuse_unk", False)),
            ignore_merges=bool(data.get("ignore_merges", False)),
            **options,
        )

    def tokenize_word(self, word: str) -> Pieces:
        if self.ignore_merges:
            whole = self.vocab.get(word)
            if whole is not None:
                return [(whole, 0, len(word))]
        symbols, spans = self.initial_symbols(word)
        merged_symbols, merged_spans = merge_word(symbols, spans, self.ranks, self.merged_by_rank)
        vocab = self.vocab  # every symbol is in it: characters were checked, merges point into it
        return [(vocab[s], a, b) for s, (a, b) in zip(merged_symbols, merged_spans)]

    def initial_symbols(self, word: str) -> tuple[list[str], list[tuple[int, int]]]:
        """One symbol per character (with the prefix / suffix), unknown characters as unk_token."""
        symbols: list[str] = []
        spans: list[tuple[int, int]] = []
        last = len(word) - 1
        unk_open = False
        for i, char in enumerate(word):
            sym = char
            if i and self.prefix:
                sym = self.prefix + sym
            if i == last and self.suffix:
                sym = sym + self.suffix
            if sym in self.vocab:
                symbols.append(sym)
                spans.append((i, i + 1))
                unk_open = False
            elif self.unk_token is not None:
                if self.fuse_unk and unk_open:
                    spans[-1] = (spans[-1][0], i + 1)
                else:
                    symbols.append(self.unk_token)
                    spans.append((i, i + 1))
                unk_open = True
        return symbols, spans

    def to_json(self) -> dict:
        return {
            "type": "BPE",
            "dropout": None,
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.prefix or None,
            "end_of_word_suffix": self.suffix or None,
            "fuse_unk": self.fuse_unk,
            "byte_fallback": False,
            "ignore_merges": self.ignore_merges,
            "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
            "merges": [[a, b] for a, b in self.merges],
        }


def merge_word(
    symbols: list[str],
    spans: list[tuple[int, int]],
    ranks: dict[tuple[str, str], tuple[int, str]],
    merged_by_rank: list[str],
) -> tuple[list[str], list[tuple[int, int]]]:
    """Apply the merges to one word's symbols: lowest rank first, leftmost first among equals.

    The queue is a heap of the ranks that have candidates, with one bucket of positions per rank,
    sorted when its rank comes up (in C): each merge then costs O(1) Python steps, and a run of
    one repeated pair (a long line of spaces) is merged in one left-to-right sweep.
    """
    n = len(symbols)
    if n < 2:
        return symbols, spans
    symbols, spans = list(symbols), list(spans)
    alive = [True] * n
    following = list(range(1, n)) + [-1]  # a linked list over the live symbols
    preceding = list(range(-1, n - 1))
    buckets: dict[int, list[int]] = {}  # rank -> positions whose pair has that merge
    for i in range(n - 1):
        hit = ranks.get((symbols[i], symbols[i + 1]))
        if hit is not None:
            buckets.setdefault(hit[0], []).append(i)
    pending = list(buckets)
    heapq.heapify(pending)
    while pending:
        rank = heapq.heappop(pending)
        positions = sorted(buckets.pop(rank))
        merged = merged_by_rank[rank]
        for at, i in enumerate(positions):
            j = following[i]
            if not alive[i] or j < 0:
                continue  # the left symbol was merged away, or is now the last one
            hit = ranks.get((symbols[i], symbols[j]))
            if hit is None or hit[1] != merged:
                continue  # out of date: the pair at i changed since it was queued
            symbols[i], alive[j] = merged, False
            spans[i] = (spans[i][0], spans[j][1])
            k = following[j]
            following[i] = k
            if k >= 0:
                preceding[k] = i
            # the two pairs the new symbol forms with its neighbours join their ranks' buckets
            first = rank + 1
            for left, right in ((preceding[i], i), (i, k)):
                if left >= 0 and right >= 0 and (hit := ranks.get((symbols[left], symbols[right]))) is not None:
                    if hit[0] not in buckets:
                        buckets[hit[0]] = []
                        heapq.heappush(pending, hit[0])
                    buckets[hit[0]].append(left)
                    first = min(first, hit[0])
            if first <= rank:  # a pair that must go first (only in hand-made merge lists)
                if rank not in buckets:
                    buckets[rank] = []
                    heapq.heappush(pending, rank)
                buckets[rank].extend(positions[at + 1 :])
                break
    keep = [i for i in range(n) if alive[i]]
    return [symbols[i] for i in keep], [spans[i] for i in keep]
