"""Pass 1 of building pretraining data: each input file tokenized into memory-mappable parts.

`tokenize_file` (one task per input file, in a worker process) reads documents, splits
sentences, tokenizes them and appends the ids, word-start flags and sentence/document bounds to
part-XXXXX.{ids,starts,sents,docs}.npy in a work folder; `TokenizedCorpus` presents all parts as
one sequence of `Document`s for pass 2 (bertkit.data.build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bertkit.data.documents import read_documents
from bertkit.data.masking import word_starts_from_word_ids
from bertkit.data.nsp import Document
from bertkit.data.shards import NpyAppender, id_dtype
from bertkit.tokenizers import Tokenizer

_TOKENIZER: Any = None


def init_worker(tokenizer_dir: str, threads: int = 1) -> None:
    global _TOKENIZER

    _TOKENIZER = Tokenizer.from_pretrained(tokenizer_dir)


def tokenize_file(task: tuple[int, str, str, str, int]) -> dict[str, int]:
    """One input file -> part-XXXXX.{ids,starts,sents,docs}.npy in the work folder."""
    index, path, doc_boundary, work, bound = task
    tok = _TOKENIZER
    stem = Path(work) / f"part-{index:05d}"
    counts = {"documents": 0, "sentences": 0, "tokens": 0, "single_sentence_documents": 0}
    with (
        NpyAppender(f"{stem}.ids.npy", id_dtype(bound)) as ids,
        NpyAppender(f"{stem}.starts.npy", np.uint8) as starts,
        NpyAppender(f"{stem}.sents.npy", np.int64) as sents,
        NpyAppender(f"{stem}.docs.npy", np.int64) as docs,
    ):
        sents.append(np.zeros(1, np.int64))
        docs.append(np.zeros(1, np.int64))
        n_tokens = n_sents = 0
        for sentences in read_documents(path, doc_boundary):
            lengths = []
            for enc in tok.encode_batch(sentences, add_special_tokens=False, num_workers=1):
                if not enc.ids:
                    continue
                ids.append(np.asarray(enc.ids))
                starts.append(word_starts_from_word_ids(enc.word_ids))
                lengths.append(len(enc.ids))
            if not lengths:
                continue
            n_sents += len(lengths)
            n_tokens += sum(lengths)
            sents.append(n_tokens - sum(lengths) + np.cumsum(lengths))
            docs.append(np.array([n_sents]))
            counts["documents"] += 1
            counts["single_sentence_documents"] += len(lengths) == 1
        counts["sentences"], counts["tokens"] = n_sents, n_tokens
    return counts


class TokenizedCorpus:
    """The parts of pass 1 as one sequence of `Document`s (memory-mapped, opened lazily)."""

    def __init__(self, work: Path, num_parts: int):
        self.work = work
        self._parts: dict[int, dict[str, np.ndarray]] = {}
        doc_counts = [len(np.load(work / f"part-{p:05d}.docs.npy", mmap_mode="r")) - 1 for p in range(num_parts)]
        self._part_of = np.repeat(np.arange(num_parts), doc_counts)
        self._first = np.concatenate([[0], np.cumsum(doc_counts)])

    def _part(self, p: int) -> dict[str, np.ndarray]:
        if p not in self._parts:
            stem = self.work / f"part-{p:05d}"
            self._parts[p] = {k: np.load(f"{stem}.{k}.npy", mmap_mode="r") for k in ("ids", "starts", "sents", "docs")}
        return self._parts[p]

    def __len__(self) -> int:
        return len(self._part_of)

    def __getitem__(self, d: int) -> Document:
        p = int(self._part_of[d])
        part = self._part(p)
        local = d - int(self._first[p])
        s0, s1 = int(part["docs"][local]), int(part["docs"][local + 1])
        bounds = np.asarray(part["sents"][s0 : s1 + 1], dtype=np.int64)
        t0, t1 = int(bounds[0]), int(bounds[-1])
        return Document(part["ids"][t0:t1], part["starts"][t0:t1], bounds - t0)

    def num_sentences(self) -> np.ndarray:
        out = []
        for p in range(len(self._first) - 1):
            out.append(np.diff(np.asarray(self._part(p)["docs"])))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def num_tokens(self) -> np.ndarray:
        out = []
        for p in range(len(self._first) - 1):
            part = self._part(p)
            out.append(np.diff(np.asarray(part["sents"])[np.asarray(part["docs"])]))
        return np.concatenate(out) if out else np.zeros(0, np.int64)
