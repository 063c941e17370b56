"""BPE: split a word into characters, then replay the learned merges in the order they were learned.

With merges st, me, men (the lecture's example), "mean" -> m e a n -> "me" a n: the pair (me, a)
was never learned, so the tokens are [me, a, n]. Options as in Hugging Face: a continuation
prefix on non-initial symbols ("##"), or an end-of-word suffix on the last one ("</w>");
`unk_token` replaces characters missing from the vocabulary (without it they are dropped).
"""

from __future__ import annotations

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
        self.merges = [tuple(m) for m in merges]
        self.prefix = continuing_subword_prefix or ""
        self.suffix = end_of_word_suffix or ""
        self.fuse_unk = fuse_unk
        self.ignore_merges = ignore_merges
        cut = len(self.prefix)
        self.ranks: dict[tuple[str, str], tuple[int, str]] = {}
        for rank, (a, b) in enumerate(self.merges):
            merged = a + (b[cut:] if cut and b.startswith(self.prefix) else b)
            if merged not in self.vocab:
                raise BertkitError(f"merge #{rank} {a!r} + {b!r} gives {merged!r}, which is not in the vocabulary")
            self.ranks[(a, b)] = (rank, merged)

    def tokenize_word(self, word: str) -> Pieces:
        if self.ignore_merges:
            whole = self.vocab.get(word)
            if whole is not None:
                return [(whole, 0, len(word))]
        symbols, spans = self._initial_symbols(word)
        ranks = self.ranks
        while len(symbols) > 1:
            best = min(
                (ranks.get(pair, (1 << 62, "")) + (i,) for i, pair in enumerate(zip(symbols, symbols[1:]))),
                default=None,
            )
            if best is None or best[0] == 1 << 62:
                break
            pair, merged = symbols[best[2] : best[2] + 2], best[1]
            new_symbols, new_spans, i = [], [], 0
            while i < len(symbols):  # merge every occurrence of the pair, left to right
                if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
                    new_symbols.append(merged)
                    new_spans.append((spans[i][0], spans[i + 1][1]))
                    i += 2
                else:
                    new_symbols.append(symbols[i])
                    new_spans.append(spans[i])
                    i += 1
            symbols, spans = new_symbols, new_spans
        vocab, unk = self.vocab, self.unk_id
        return [(vocab[s] if s in vocab else unk, a, b) for s, (a, b) in zip(symbols, spans)]

    def _initial_symbols(self, word: str) -> tuple[list[str], list[tuple[int, int]]]:
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
