"""One or two sequences -> one Encoding: truncation into windows, then the special tokens.

The general path (`general`) is Hugging Face's: cut the sequences to the room left by the special
tokens (overflowing windows included), then let the post-processor merge them with its template.
When nothing has to be cut and the template is BERT-shaped -- special tokens around A (and B) --
`fast` lays the precomputed special-token lists around the sequences with a few list additions
instead; the tests check that both give the same Encoding.
"""

from __future__ import annotations

from typing import Any

from bertkit.errors import BertkitError
from bertkit.tokenizers.encoding import Encoding, merge, truncate_pair
from bertkit.tokenizers.sequence import Raw

# per chunk of special tokens: its ids, type ids, offsets, word ids and special-tokens mask
Chunk = tuple[list[int], list[int], list[tuple[int, int]], list[Any], list[int]]
# (chunks between and around the sequences, each sequence's type id, the one type id of all tokens if any)
Layout = tuple[list[Chunk], list[int], int | None]


class Assembler:
    """Truncation and special tokens around the sequences, with a fast path for BERT's template."""

    def __init__(self, post_processor: Any, table: list[str]) -> None:
        self.post_processor = post_processor
        self.table = table  # id -> token, shared by every Encoding made here
        pp = post_processor
        simple = (
            getattr(pp, "simple", None)
            if pp is not None
            else {"single": ([[], []], [0]), "pair": ([[], [], []], [0, 1])}
        )
        self.layouts: dict[str, Layout] | None = None if simple is None else {k: _layout(*v) for k, v in simple.items()}
        self._n_special = [pp.num_special_tokens_to_add(pair) if pp is not None else 0 for pair in (False, True)]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._n_special[bool(pair)]

    def assemble(
        self, first: Raw, second: Raw | None, add_special_tokens: bool = True, truncation: dict | None = None
    ) -> Encoding:
        """The Encoding of one sequence (or a pair), truncated as `truncation` asks."""
        if self.layouts is not None:
            if truncation is None:
                return self.fast(first, second, add_special_tokens)
            size = len(first[0]) + (len(second[0]) if second is not None else 0)
            if add_special_tokens:
                size += self._n_special[second is not None]
            if size <= truncation["max_length"]:
                return self.fast(first, second, add_special_tokens)
        return self.general(first, second, add_special_tokens, truncation)

    def fast(self, first: Raw, second: Raw | None, add_special_tokens: bool) -> Encoding:
        """Special tokens around the sequences by list arithmetic (no truncation)."""
        if self.layouts is None:  # a template that is not BERT-shaped
            return self.general(first, second, add_special_tokens)
        layout = self.layouts["pair" if second is not None else "single"]
        chunks, seq_types, uniform = layout if add_special_tokens else _bare_layout(layout)
        # the chunk before the first sequence ([CLS]) ...
        c_ids, c_types, c_offsets, c_words, c_special = chunks[0]
        ids, type_ids, offsets, word_ids, special = (
            list(c_ids),
            list(c_types),
            list(c_offsets),
            list(c_words),
            list(c_special),
        )
        ranges = {}
        for k, (s_ids, s_offsets, s_words) in enumerate((first,) if second is None else (first, second)):
            n = len(s_ids)
            ranges[k] = (len(ids), len(ids) + n)
            # ... then each sequence followed by the chunk after it ([SEP])
            c_ids, c_types, c_offsets, c_words, c_special = chunks[k + 1]
            ids += s_ids
            ids += c_ids
            offsets += s_offsets
            offsets += c_offsets
            word_ids += s_words
            word_ids += c_words
            special += [0] * n
            special += c_special
            if uniform is None:
                type_ids += [seq_types[k]] * n
                type_ids += c_types
        if uniform is not None:  # every token has the same type id (single sequences in BERT)
            type_ids = [uniform] * len(ids)
        return Encoding(ids, type_ids, offsets, word_ids, special, [1] * len(ids), self.table, None, ranges)

    def general(
        self, first: Raw, second: Raw | None, add_special_tokens: bool = True, truncation: dict | None = None
    ) -> Encoding:
        """Truncate (into windows), then add special tokens with the post-processor."""
        a = Encoding.from_pieces(*first, self.table)
        b = Encoding.from_pieces(*second, self.table) if second is not None else None
        if truncation is not None:
            n_special = self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
            room = truncation["max_length"] - n_special
            if room < 0:
                raise BertkitError(
                    f"max_length={truncation['max_length']} leaves no room for the special tokens; raise max_length"
                )
            truncate_pair(
                a,
                b,
                room,
                truncation.get("strategy", "longest_first"),
                truncation.get("stride", 0),
                truncation.get("direction", "right"),
            )
        if self.post_processor is not None:
            return self.post_processor.process(a, b, add_special_tokens)
        if b is None:
            a.sequence_ranges = {0: (0, len(a))}
            return a
        b.type_ids = [1] * len(b)
        out = merge([a, b])
        out._table = self.table
        return out


def _layout(chunks: list[list[tuple[int, int]]], seq_types: list[int]) -> Layout:
    """Precomputed pieces of a simple template (see Layout)."""
    parts: list[Chunk] = [
        ([i for i, _ in c], [t for _, t in c], [(0, 0)] * len(c), [None] * len(c), [1] * len(c)) for c in chunks
    ]
    types = {t for c in chunks for _, t in c} | set(seq_types)
    return parts, seq_types, (types.pop() if len(types) == 1 else None)


def _bare_layout(layout: Layout) -> Layout:
    """The same layout without special tokens (add_special_tokens=False)."""
    parts, seq_types, _ = layout
    empty: Chunk = ([], [], [], [], [])
    types = set(seq_types)
    return [empty] * len(parts), seq_types, (types.pop() if len(types) == 1 else None)
