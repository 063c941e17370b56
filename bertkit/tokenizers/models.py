"""What every subword model shares: the vocabulary and a cache of whole-word results.

Corpus words repeat heavily (the 1,000 most frequent words are half of all running text), so a
model splits each distinct word once. Words that stay one token -- most of them -- live in
`single` (word -> id), the others in `multi` (word -> (ids, offsets inside the word)). The
tokenizer looks whole lists of words up in `single` with one `map(dict.get, ...)`.
"""

from __future__ import annotations

from bertkit.errors import BertkitError

Pieces = list[tuple[int, int, int]]  # (id, start, end) of each piece, in characters of the word


class Model:
    """Base class: subclasses implement `tokenize_word` and `to_json`."""

    cache_capacity = 1_000_000  # distinct words kept before the cache starts over

    def __init__(self, vocab: dict[str, int], unk_token: str | None) -> None:
        self.vocab = dict(vocab)
        self.unk_token = unk_token
        self.unk_id = self.vocab.get(unk_token) if unk_token is not None else None
        if unk_token is not None and self.unk_id is None:
            raise BertkitError(f"the unknown token {unk_token!r} is not in the vocabulary; add it or pass unk_token=")
        self.single: dict[str, int] = {}
        self.multi: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = {}
        self._id_to_token: list[str] | None = None

    def tokenize_word(self, word: str) -> Pieces:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def tokenize_cached(self, word: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """(ids, offsets inside the word) for a word, remembering the answer."""
        hit = self.multi.get(word)
        if hit is not None:
            return hit
        single = self.single.get(word)
        if single is not None:
            return (single,), ((0, len(word)),)
        pieces = self.tokenize_word(word)
        if len(self.single) + len(self.multi) >= self.cache_capacity:
            self.clear_cache()
        ids = tuple(p[0] for p in pieces)
        spans = tuple((p[1], p[2]) for p in pieces)
        if len(pieces) == 1 and spans[0] == (0, len(word)):
            self.single[word] = ids[0]
        else:
            self.multi[word] = (ids, spans)
        return ids, spans

    def clear_cache(self) -> None:
        self.single.clear()
        self.multi.clear()

    def __getstate__(self) -> dict:  # a pickled tokenizer travels without its word cache
        state = dict(self.__dict__)
        state["single"], state["multi"] = {}, {}
        return state

    # vocabulary access -------------------------------------------------------------------
    @property
    def id_to_token_list(self) -> list[str]:
        if self._id_to_token is None or len(self._id_to_token) != len(self.vocab):
            table = [""] * (max(self.vocab.values(), default=-1) + 1)
            for token, idx in self.vocab.items():
                table[idx] = token
            self._id_to_token = table
        return self._id_to_token

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, idx: int) -> str | None:
        table = self.id_to_token_list
        return table[idx] if 0 <= idx < len(table) else None

    def get_vocab_size(self) -> int:
        return len(self.vocab)
