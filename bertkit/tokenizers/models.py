"""What every subword model shares: the vocabulary and a cache of whole-word results.

Corpus words repeat heavily (the 1,000 most frequent words are half of all running text), so a
model splits each distinct word once. Words that stay one token -- most of them -- live in
`single` (word -> id), the others in `multi` (word -> (ids, offsets inside the word)). The
tokenizer looks whole lists of words up in `single` with one `map(dict.get, ...)`.

Vocabularies are checked when a model is built (`check_ids`): a tokenizer turns ids into a dense
id -> token table, so an id that is negative, repeated, not an integer or far beyond the number of
tokens would give wrong tokens or an enormous allocation instead of a clear error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bertkit.errors import BertkitError

Pieces = list[tuple[int, int, int]]  # (id, start, end) of each piece, in characters of the word

# The id -> token table is dense, so ids may leave gaps but not many: the table may be at most
# this many times the number of tokens (plus a little room for added tokens).
DENSITY = 2
SPARE_IDS = 1024
MAX_ID = (1 << 31) - 1  # ids are int32 in every framework that reads them
# A word longer than this is split each time it occurs instead of being remembered: a cache of
# huge words would grow without bound on hostile input, and such words are rare in real text.
CACHED_WORD_CHARS = 256


def check_ids(vocab: Mapping[str, object], what: str = "the vocabulary", extra: Iterable[object] = ()) -> None:
    """Refuse ids that are not integers, negative, repeated, or too sparse for a dense table."""
    seen: dict[int, str] = {}
    for token, idx in vocab.items():
        if not isinstance(token, str):
            raise BertkitError(f"{what}: token {token!r} is not a string")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise BertkitError(f"{what}: the id of {token!r} is {idx!r}; ids must be whole numbers")
        if idx < 0 or idx > MAX_ID:
            raise BertkitError(f"{what}: the id of {token!r} is {idx}; ids must lie in 0..{MAX_ID}")
        if idx in seen:
            raise BertkitError(f"{what}: {seen[idx]!r} and {token!r} share id {idx}; each id must name one token")
        seen[idx] = token
    check_density(list(seen) + [int(i) for i in extra if isinstance(i, int)], len(seen), what)


def check_density(ids: list[int], n_tokens: int, what: str) -> None:
    """The largest id must keep the dense id -> token table near the number of tokens."""
    top = max(ids, default=-1)
    if top >= DENSITY * n_tokens + SPARE_IDS:
        raise BertkitError(
            f"{what}: id {top} is far beyond its {n_tokens} tokens (at most {DENSITY * n_tokens + SPARE_IDS - 1}); "
            "renumber the vocabulary densely from 0"
        )


class Model:
    """Base class: subclasses implement `tokenize_word` and `to_json`."""

    cache_capacity = 1_000_000  # distinct words kept before the cache starts over

    def __init__(self, vocab: dict[str, int], unk_token: str | None) -> None:
        check_ids(vocab)
        self.vocab = dict(vocab)
        self.unk_token = unk_token
        self.unk_id: int | None = self.vocab.get(unk_token) if unk_token is not None else None
        if unk_token is not None and self.unk_id is None:
            raise BertkitError(f"the unknown token {unk_token!r} is not in the vocabulary; add it or pass unk_token=")
        self.single: dict[str, int] = {}
        self.multi: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = {}
        self._id_to_token: list[str] | None = None
        self._table_for = -1  # len(vocab) when the table was built

    def tokenize_word(self, word: str) -> Pieces:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def tokenize_cached(self, word: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """(ids, offsets inside the word) for a word, remembering the answer for ordinary words."""
        hit = self.multi.get(word)
        if hit is not None:
            return hit
        single = self.single.get(word)
        if single is not None:
            return (single,), ((0, len(word)),)
        pieces = self.tokenize_word(word)
        ids = tuple(p[0] for p in pieces)
        spans = tuple((p[1], p[2]) for p in pieces)
        if len(word) > CACHED_WORD_CHARS:
            return ids, spans
        if len(self.single) + len(self.multi) >= self.cache_capacity:
            self.clear_cache()
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
        if self._id_to_token is None or self._table_for != len(self.vocab):
            table = [""] * (max(self.vocab.values(), default=-1) + 1)
            for token, idx in self.vocab.items():
                table[idx] = token
            self._id_to_token, self._table_for = table, len(self.vocab)
        return self._id_to_token

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, idx: int) -> str | None:
        table = self.id_to_token_list
        return table[idx] if 0 <= idx < len(table) else None

    def get_vocab_size(self) -> int:
        return len(self.vocab)

    def _unk(self, word: str) -> int:
        """The unknown token's id, for a model that has one (else a clear error)."""
        if self.unk_id is None:
            raise BertkitError(f"{word[:40]!r} is not in the vocabulary and the model has no unknown token")
        return self.unk_id
