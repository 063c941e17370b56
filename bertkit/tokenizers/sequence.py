"""One text -> the pieces of one sequence: (ids, character offsets, word ids), no special tokens.

This is the encoder's hot path, built to do almost no per-character or per-word Python work:
one `str.translate` (the normalizer), one `re.findall` (the pre-tokenizer), one
`map(dict.get, words)` over the model's cache of whole words, and list arithmetic; only words
that split into several pieces are handled one by one (`_split_words`). Added tokens ([MASK],
user additions) are cut out first, and the text between them goes through the same path.

`reference.encode_reference` computes the same thing plainly, word by word, with no cache;
the tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, count, repeat
from operator import is_
from re import Pattern

from bertkit.errors import BertkitError
from bertkit.tokenizers.added_tokens import AddedToken, build_pattern, split_on_added
from bertkit.tokenizers.bytelevel import byte_to_char_index
from bertkit.tokenizers.models import Model
from bertkit.tokenizers.normalizers import Normalizer
from bertkit.tokenizers.pre_tokenizers import ByteLevel, PreTokenizer

Offsets = list[tuple[int, int]]
Raw = tuple[list[int], Offsets, list[int]]  # one sequence before special tokens


def _same(i: int) -> int:
    return i


class SequenceEncoder:
    """Text -> Raw with a given model, normalizer, pre-tokenizer and added tokens."""

    def __init__(
        self,
        model: Model,
        normalizer: Normalizer | None,
        pre_tokenizer: PreTokenizer,
        added_tokens: Sequence[AddedToken],
    ) -> None:
        self.model, self.normalizer, self.pre_tokenizer = model, normalizer, pre_tokenizer
        # tokens matched in the raw text, and tokens matched after normalization
        self.raw_added = [t for t in added_tokens if not t.normalized]
        self.norm_added = [t for t in added_tokens if t.normalized]
        self.raw_pattern = build_pattern(self.raw_added)
        self.norm_pattern = build_pattern(self.norm_added)
        firsts = {t.content[0] for t in self.raw_added if t.content}
        self.raw_first = firsts if len(firsts) <= 3 else None  # a cheap "could there be one?" test
        self.byte_level = isinstance(pre_tokenizer, ByteLevel)
        self.prefix_space = isinstance(pre_tokenizer, ByteLevel) and pre_tokenizer.add_prefix_space

    def encode(self, text: str) -> Raw:
        pattern = self.raw_pattern
        if pattern is not None and (self.raw_first is None or any(c in text for c in self.raw_first)):
            if pattern.search(text):
                return self._around_added(text, pattern, self.raw_added, self._plain, _same)
        return self._plain(text)

    def encode_words(self, words: object, what: str = "text") -> Raw:
        """A text already split into words (is_split_into_words): each word is encoded on its own,
        word ids are the words' indices, offsets count inside each word (as in transformers)."""
        if isinstance(words, str) or not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise BertkitError(f"with is_split_into_words=True, {what} must be a list of str (the words)")
        ids: list[int] = []
        offsets: Offsets = []
        word_ids: list[int] = []
        for i, word in enumerate(words):
            w_ids, w_offsets, _ = self.encode(word)
            ids += w_ids
            offsets += w_offsets
            word_ids += [i] * len(w_ids)
        return ids, offsets, word_ids

    def _plain(self, text: str) -> Raw:
        """Text without raw added tokens: normalize, then look for normalized added tokens."""
        if self.normalizer is not None:
            norm, align = self.normalizer.normalize(text)
        else:
            norm, align = text, None
        if self.norm_pattern is not None and self.norm_pattern.search(norm):
            to_orig = _same if align is None else (lambda i: align[i] if i < len(align) else len(text))
            encode_piece = lambda piece: self._normalized(piece, None)  # noqa: E731
            return self._around_added(norm, self.norm_pattern, self.norm_added, encode_piece, to_orig)
        return self._normalized(norm, align)

    def _normalized(self, norm: str, align: list[int] | None) -> Raw:
        """Normalized text -> words -> pieces, offsets mapped back through `align`."""
        shift = 0
        if self.prefix_space and norm and norm[0] != " ":
            norm, shift = " " + norm, 1
        words, starts, ends = self.pre_tokenizer.split(norm)
        ids: list = list(map(self.model.single.get, words))  # None where a word is not one known token
        offsets = list(zip(starts, ends))
        word_ids = list(range(len(words)))
        if None in ids:
            ids, offsets, word_ids = self._split_words(words, ids, offsets, word_ids, norm)
        if shift:
            offsets = [(s - 1 if s else 0, e - 1 if e else 0) for s, e in offsets]
        if align is not None:
            if shift:  # a piece made only of the added prefix space is empty: keep it empty
                last = len(align) - 1
                offsets = [(align[s], align[e - 1] + 1) if e > s else (align[min(s, last)],) * 2 for s, e in offsets]
            else:
                offsets = [(align[s], align[e - 1] + 1) for s, e in offsets]  # pieces are never empty
        return ids, offsets, word_ids

    def _split_words(
        self, words: list[str], ids: list, offsets: Offsets, word_ids: list[int], norm: str
    ) -> tuple[list[int], Offsets, list[int]]:
        """Replace each word that is not a single token by its pieces (one linear pass)."""
        tokenize = self.model.tokenize_cached
        new_ids: list[int] = []
        new_offsets: Offsets = []
        new_words: list[int] = []
        prev = 0
        for i in compress(count(), map(is_, ids, repeat(None))):  # the indices of the None ids
            if i > prev:  # copy the run of single-token words before this one as a block
                new_ids += ids[prev:i]
                new_offsets += offsets[prev:i]
                new_words += word_ids[prev:i]
            prev = i + 1
            pids, spans = tokenize(words[i])
            start, end = offsets[i]
            if self.byte_level and not norm[start:end].isascii():  # spans are in bytes: to characters
                index = byte_to_char_index(norm[start:end])
                spans = tuple((index[a], index[b - 1] + 1) for a, b in spans)
            new_ids += pids
            new_offsets += [(start + a, start + b) for a, b in spans]
            new_words += [i] * len(pids)
        if prev < len(ids):
            new_ids += ids[prev:]
            new_offsets += offsets[prev:]
            new_words += word_ids[prev:]
        return new_ids, new_offsets, new_words

    def _around_added(
        self,
        text: str,
        pattern: Pattern,
        tokens: list[AddedToken],
        encode_piece: Callable[[str], Raw],
        to_orig: Callable[[int], int],
    ) -> Raw:
        """Text containing added tokens: each token is one token and one word; the text between
        them is encoded piece by piece. `to_orig` maps an index of `text` to the original text."""
        ids: list[int] = []
        offsets: Offsets = []
        word_ids: list[int] = []
        n_words = 0
        for start, end, tok in split_on_added(text, pattern, tokens):
            if tok is not None:
                ids.append(tok.id)
                offsets.append((to_orig(start), to_orig(end - 1) + 1))
                word_ids.append(n_words)
                n_words += 1
                continue
            p_ids, p_offsets, p_words = encode_piece(text[start:end])
            ids += p_ids
            offsets += [(to_orig(s + start), to_orig(e + start - 1) + 1) for s, e in p_offsets]
            word_ids += [w + n_words for w in p_words]
            n_words += (max(p_words) + 1) if p_words else 0
        return ids, offsets, word_ids
