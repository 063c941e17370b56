"""Encoding: one model input -- ids with everything BERT and its users need alongside them.

ids, type_ids (segment A = 0 / B = 1, the lecture's segment embeddings), attention_mask (1 =
real token, 0 = [PAD]), special_tokens_mask, offsets (start, end) into the original text, word
ids (which pre-tokenized word a token came from) and `overflowing`: the other windows of a text
cut by truncation. Truncation, merging and padding follow Hugging Face `tokenizers` exactly, so
windows and their order match theirs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bertkit.errors import BertkitError

Offsets = tuple[int, int]


class Encoding:
    __slots__ = (
        "ids",
        "type_ids",
        "offsets",
        "word_ids",
        "special_tokens_mask",
        "attention_mask",
        "overflowing",
        "sequence_ranges",
        "_table",
    )

    def __init__(
        self,
        ids: list[int],
        type_ids: list[int],
        offsets: list[Offsets],
        word_ids: list[int | None],
        special_tokens_mask: list[int],
        attention_mask: list[int],
        table: list[str] | None = None,
        overflowing: list[Encoding] | None = None,
        sequence_ranges: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.ids = ids
        self.type_ids = type_ids
        self.offsets = offsets
        self.word_ids = word_ids
        self.special_tokens_mask = special_tokens_mask
        self.attention_mask = attention_mask
        self.overflowing = overflowing if overflowing is not None else []
        self.sequence_ranges = sequence_ranges if sequence_ranges is not None else {}
        self._table = table  # id -> token string, shared with the tokenizer

    @classmethod
    def from_pieces(
        cls, ids: list[int], offsets: list[Offsets], word_ids: Sequence[int | None], table: list[str] | None
    ) -> Encoding:
        """One sequence straight from the model: no special tokens yet."""
        n = len(ids)
        return cls(ids, [0] * n, offsets, list(word_ids), [0] * n, [1] * n, table)

    # views -------------------------------------------------------------------------------
    @property
    def tokens(self) -> list[str]:
        table = self._table
        return [table[i] if 0 <= i < len(table) else "" for i in self.ids] if table is not None else []

    @property
    def words(self) -> list[int | None]:
        return self.word_ids

    @property
    def n_sequences(self) -> int:
        return max(len(self.sequence_ranges), 1)

    @property
    def sequence_ids(self) -> list[int | None]:
        seq: list[int | None] = [None] * len(self.ids)
        for seq_id, (start, stop) in self.sequence_ranges.items():
            seq[start:stop] = [seq_id] * (stop - start)
        if not self.sequence_ranges:  # a single sequence that was truncated or never processed
            seq = [None if s else 0 for s in self.special_tokens_mask]
        return seq

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        more = "..." if len(self.ids) > 12 else ""
        n, overflowing = len(self.ids), len(self.overflowing)
        return f"Encoding(num_tokens={n}, tokens={self.tokens[:12]}{more}, overflowing={overflowing})"

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def token_to_chars(self, token: int) -> Offsets | None:
        return self.offsets[token] if 0 <= token < len(self.ids) and self.word_ids[token] is not None else None

    def token_to_sequence(self, token: int) -> int | None:
        return self.sequence_ids[token]

    def char_to_token(self, pos: int, sequence_index: int = 0) -> int | None:
        """The token whose offsets contain char `pos` of sequence `sequence_index` (QA spans)."""
        start, stop = self.sequence_ranges.get(sequence_index, (0, len(self.ids)))
        for i in range(start, stop):
            s, e = self.offsets[i]
            if s <= pos < e:
                return i
        return None

    def copy(self) -> Encoding:
        return Encoding(
            list(self.ids),
            list(self.type_ids),
            list(self.offsets),
            list(self.word_ids),
            list(self.special_tokens_mask),
            list(self.attention_mask),
            self._table,
            [o.copy() for o in self.overflowing],
            dict(self.sequence_ranges),
        )

    def _slice(self, start: int, stop: int) -> Encoding:
        return Encoding(
            self.ids[start:stop],
            self.type_ids[start:stop],
            self.offsets[start:stop],
            self.word_ids[start:stop],
            self.special_tokens_mask[start:stop],
            self.attention_mask[start:stop],
            self._table,
        )

    # truncation, merging, padding ---------------------------------------------------------
    def truncate(self, max_length: int, stride: int = 0, direction: str = "right") -> None:
        """Keep the first window of `max_length` tokens; the rest become `overflowing` windows.

        Consecutive windows share `stride` tokens, so an answer cut at a window edge is whole in
        the next one.
        """
        n = len(self.ids)
        if max_length >= n:
            return
        if max_length == 0:  # nothing kept: the whole sequence becomes the one overflowing window
            whole = self._slice(0, n)
            for name in ("ids", "type_ids", "offsets", "word_ids", "special_tokens_mask", "attention_mask"):
                setattr(self, name, [])
            self.overflowing, self.sequence_ranges = [whole], {}
            return
        if stride >= max_length:
            raise BertkitError(f"stride ({stride}) must be smaller than the room left for tokens ({max_length})")
        step = max_length - stride
        ranges: list[tuple[int, int]] = []
        if direction == "right":
            for start in range(0, n, step):
                stop = min(start + max_length, n)
                ranges.append((start, stop))
                if stop == n:
                    break
        else:
            for stop in range(n, 0, -step):
                start = max(stop - max_length, 0)
                ranges.append((start, stop))
                if start == 0:
                    break
        first = self._slice(*ranges[0])
        first.overflowing = [self._slice(a, b) for a, b in ranges[1:]]
        for name in Encoding.__slots__:
            setattr(self, name, getattr(first, name))

    def merge_with(self, other: Encoding, growing_offsets: bool = False) -> None:
        """Append `other`. Overflowing windows pair up as in Hugging Face: each of ours with
        `other` and each of its windows, then ourselves with each of its windows."""
        overflowing = []
        for mine in self.overflowing:
            overflowing.append(_joined(mine, other, growing_offsets))
            overflowing.extend(_joined(mine, theirs, growing_offsets) for theirs in other.overflowing)
        overflowing.extend(_joined(self, theirs, growing_offsets) for theirs in other.overflowing)
        n = len(self.ids)
        for seq_id, (start, stop) in other.sequence_ranges.items():
            self.sequence_ranges[seq_id] = (n + start, n + stop)
        shift = self.offsets[-1][1] if growing_offsets and self.offsets else 0
        self.ids = self.ids + other.ids
        self.type_ids = self.type_ids + other.type_ids
        self.word_ids = self.word_ids + other.word_ids
        self.offsets = self.offsets + ([(s + shift, e + shift) for s, e in other.offsets] if shift else other.offsets)
        self.special_tokens_mask = self.special_tokens_mask + other.special_tokens_mask
        self.attention_mask = self.attention_mask + other.attention_mask
        self.overflowing = overflowing

    def pad(self, length: int, pad_id: int = 0, pad_type_id: int = 0, direction: str = "right") -> None:
        for window in self.overflowing:
            window.pad(length, pad_id, pad_type_id, direction)
        k = length - len(self.ids)
        if k <= 0:
            return
        if direction == "right":
            self.ids = self.ids + [pad_id] * k
            self.type_ids = self.type_ids + [pad_type_id] * k
            self.word_ids = self.word_ids + [None] * k
            self.attention_mask = self.attention_mask + [0] * k
            self.special_tokens_mask = self.special_tokens_mask + [1] * k
            self.offsets = self.offsets + [(0, 0)] * k
        else:
            no_words: list[int | None] = [None] * k
            self.ids = [pad_id] * k + self.ids
            self.type_ids = [pad_type_id] * k + self.type_ids
            self.word_ids = no_words + self.word_ids
            self.attention_mask = [0] * k + self.attention_mask
            self.special_tokens_mask = [1] * k + self.special_tokens_mask
            self.offsets = [(0, 0)] * k + self.offsets
            self.sequence_ranges = {s: (a + k, b + k) for s, (a, b) in self.sequence_ranges.items()}


def _joined(first: Encoding, second: Encoding, growing_offsets: bool) -> Encoding:
    """first + second as one window (their own overflowing windows are paired by the caller)."""
    combined = first._slice(0, len(first))
    combined.sequence_ranges = dict(first.sequence_ranges)
    plain = second._slice(0, len(second))
    plain.sequence_ranges = dict(second.sequence_ranges)
    combined.merge_with(plain, growing_offsets)
    return combined


def merge(encodings: list[Encoding], growing_offsets: bool = False) -> Encoding:
    out = Encoding([], [], [], [], [], [])
    for enc in encodings:
        out.merge_with(enc, growing_offsets)
    if encodings:
        out._table = encodings[0]._table
    return out


def truncate_pair(
    first: Encoding,
    second: Encoding | None,
    max_length: int,
    strategy: str = "longest_first",
    stride: int = 0,
    direction: str = "right",
) -> None:
    """Cut one or two sequences (before special tokens) to `max_length` tokens in total, in place."""
    if max_length == 0:
        first.truncate(0, stride, direction)
        if second is not None:
            second.truncate(0, stride, direction)
        return
    total = len(first) + (len(second) if second is not None else 0)
    if total <= max_length:
        return
    to_remove = total - max_length
    if strategy == "longest_first":
        if second is None:
            first.truncate(max_length, stride, direction)
            return
        n1, n2 = len(first), len(second)
        swap = n1 > n2
        if swap:
            n1, n2 = n2, n1
        n2 = n1 if n1 > max_length else max(n1, max_length - n1)
        if n1 + n2 > max_length:
            n1 = max_length // 2
            n2 = n1 + max_length % 2
        if swap:
            n1, n2 = n2, n1
        first.truncate(n1, stride, direction)
        second.truncate(n2, stride, direction)
    elif strategy in ("only_first", "only_second"):
        if strategy == "only_first":
            target = first
        elif second is not None:
            target = second
        else:
            raise BertkitError(
                "truncation='only_second' needs a second sequence (text_pair); use 'longest_first' or 'only_first'"
            )
        if len(target) <= to_remove:
            raise BertkitError(
                f"truncation={strategy!r} cannot fit max_length={max_length}: the {strategy[5:]} sequence has "
                f"{len(target)} tokens but {to_remove} must go; raise max_length or use 'longest_first'"
            )
        target.truncate(len(target) - to_remove, stride, direction)
    else:
        raise BertkitError(
            f"unknown truncation strategy {strategy!r}; use 'longest_first', 'only_first' or 'only_second'"
        )
