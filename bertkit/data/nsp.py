"""Sentence-pair instances for MLM + NSP, as google-research/bert's create_pretraining_data.

For each document, sentences are gathered into a chunk until it reaches a target length
(max_seq_len - 3, or with probability `short_seq_prob` a random shorter one, so the model also
sees short inputs). Segment A is the first 1..n-1 sentences of the chunk. Then, with p = 0.5:
  isNext   B is the rest of the chunk (the true continuation);
  notNext  B is a span from a random other document, and the chunk's unused sentences are put
           back so they start the next chunk.
The pair is cut to max_seq_len - 3 by trimming the longer side, at a random end, one token at a
time, and laid out as [CLS] A [SEP] B [SEP] with segment ids 0 for "[CLS] A [SEP]" and 1 after.

One change from Google's code, so the 50/50 balance really holds: Google makes every one-sentence
chunk notNext, which skews the labels towards notNext (by several points on text with long
sentences). Here the label is drawn first; an isNext chunk of one sentence takes the next
sentence of the document as B (truncation then trims the pair), and a lone last sentence of a
document -- which could only be notNext -- is dropped before any label is drawn.

Documents are token-id arrays with sentence boundaries; everything here is index arithmetic on
them, so the caller can keep the corpus memory-mapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bertkit.errors import BertkitError


@dataclass
class Document:
    """A tokenized document: flat ids [N], word-start flags [N], sentence bounds [S + 1]."""

    ids: np.ndarray
    starts: np.ndarray
    bounds: np.ndarray

    @property
    def num_sentences(self) -> int:
        return len(self.bounds) - 1

    @classmethod
    def from_sentences(
        cls, sentences: Sequence[Sequence[int]], starts: Sequence[Sequence[bool]] | None = None
    ) -> Document:
        lengths = [len(s) for s in sentences]
        ids = np.fromiter((t for s in sentences for t in s), dtype=np.int64, count=sum(lengths))
        if starts is None:
            flags = np.ones(len(ids), dtype=bool)
        else:
            flags = np.fromiter((bool(f) for s in starts for f in s), dtype=bool, count=sum(lengths))
        return cls(ids, flags, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


class DocumentSource(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Document: ...


@dataclass
class Instance:
    """[CLS] A [SEP] B [SEP]: ids [T], word starts [T], len_a = len("[CLS] A [SEP]"), label 1 = notNext."""

    ids: np.ndarray
    starts: np.ndarray
    len_a: int
    is_random_next: bool

    @property
    def token_type_ids(self) -> np.ndarray:
        types = np.zeros(len(self.ids), dtype=np.int64)
        types[self.len_a :] = 1
        return types


@dataclass
class PairBuilder:
    """Cuts the documents of a source into NSP instances (see the module docstring)."""

    max_seq_len: int
    cls_id: int
    sep_id: int
    short_seq_prob: float  # BuildSettings.short_seq_prob when building

    def __post_init__(self) -> None:
        if self.max_seq_len < 5:
            raise BertkitError(f"max_seq_len must be at least 5 ([CLS] A [SEP] B [SEP]), got {self.max_seq_len}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise BertkitError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")

    def instances(
        self, docs: DocumentSource, index: int, rng: np.random.Generator, random_pool: Sequence[int] | None = None
    ) -> list[Instance]:
        """All instances of document `index`; notNext spans come from `random_pool` (default: all)."""
        doc = docs[index]
        pool = range(len(docs)) if random_pool is None else random_pool
        if len(pool) < 2:
            raise BertkitError("NSP needs at least 2 documents to draw notNext sentences from")
        max_tokens = self.max_seq_len - 3
        target = max_tokens
        if rng.random() < self.short_seq_prob:
            target = int(rng.integers(2, max_tokens + 1))
        out: list[Instance] = []
        first, length, i = 0, 0, 0  # chunk = sentences [first, i]
        n = doc.num_sentences
        while i < n:
            length += int(doc.bounds[i + 1] - doc.bounds[i])
            if i == n - 1 or length >= target:
                if first == n - 1:  # a lone last sentence: dropped whatever its label would be
                    break
                random_next = bool(rng.random() < 0.5)
                chunk_end = i + 1
                if not random_next and chunk_end - first == 1:
                    chunk_end += 1  # take the next sentence as B
                    i += 1
                a_end = first + 1
                if chunk_end - first >= 2:
                    a_end = first + int(rng.integers(1, chunk_end - first))
                a = (int(doc.bounds[first]), int(doc.bounds[a_end]))
                if random_next:
                    b_doc, b = self._random_span(docs, index, pool, target - (a[1] - a[0]), rng)
                    i -= chunk_end - a_end  # put the unused sentences back
                else:
                    b_doc, b = doc, (int(doc.bounds[a_end]), int(doc.bounds[chunk_end]))
                a, b = _truncate_pair(a, b, max_tokens, rng)
                out.append(self._assemble(doc, a, b_doc, b, random_next))
                first, length = i + 1, 0
                target = max_tokens
                if rng.random() < self.short_seq_prob:
                    target = int(rng.integers(2, max_tokens + 1))
            i += 1
        return out

    def _random_span(
        self, docs: DocumentSource, index: int, pool: Sequence[int], target: int, rng: np.random.Generator
    ) -> tuple[Document, tuple[int, int]]:
        for _ in range(10):  # as Google: ten tries to land on another document
            other = int(pool[int(rng.integers(len(pool)))])
            if other != index:
                break
        else:
            other = next(int(d) for d in pool if int(d) != index)
        rdoc = docs[other]
        j = int(rng.integers(rdoc.num_sentences))
        start = int(rdoc.bounds[j])
        end = start
        for k in range(j, rdoc.num_sentences):
            end = int(rdoc.bounds[k + 1])
            if end - start >= target:
                break
        return rdoc, (start, end)

    def _assemble(
        self, doc_a: Document, a: tuple[int, int], doc_b: Document, b: tuple[int, int], random_next: bool
    ) -> Instance:
        ids = np.concatenate(
            [[self.cls_id], doc_a.ids[a[0] : a[1]], [self.sep_id], doc_b.ids[b[0] : b[1]], [self.sep_id]]
        )
        starts = np.concatenate([[True], doc_a.starts[a[0] : a[1]], [True], doc_b.starts[b[0] : b[1]], [True]])
        starts[1] = starts[a[1] - a[0] + 2] = True  # a trimmed front may start mid-word
        return Instance(ids.astype(np.int64), starts.astype(bool), a[1] - a[0] + 2, random_next)


def _truncate_pair(a: tuple[int, int], b: tuple[int, int], max_tokens: int, rng: np.random.Generator):
    """Trim the longer of two [start, end) spans, one token at a time from a random end.

    Runs of steps on the same side are drawn at once (a binomial count of front trims), which
    has the same distribution as Google's token-by-token loop and keeps long sentences cheap.
    """
    a0, a1 = a
    b0, b1 = b
    while (a1 - a0) + (b1 - b0) > max_tokens:
        over = (a1 - a0) + (b1 - b0) - max_tokens
        if a1 - a0 > b1 - b0:
            steps = min(over, (a1 - a0) - (b1 - b0))
            front = int(rng.binomial(steps, 0.5))
            a0, a1 = a0 + front, a1 - (steps - front)
        else:
            steps = min(over, (b1 - b0) - (a1 - a0) + 1)
            front = int(rng.binomial(steps, 0.5))
            b0, b1 = b0 + front, b1 - (steps - front)
    if a1 <= a0 or b1 <= b0:
        raise AssertionError("an NSP segment became empty")  # cannot happen: both start non-empty
    return (a0, a1), (b0, b1)
