"""Corpus -> pretraining data folder, in two streaming passes over worker processes.

Pass 1 (tokenize, one task per input file): read documents, split sentences, tokenize them and
append the ids, word-start flags and sentence/document bounds to memory-mappable parts in a work
folder. Pass 2 (instances, one task per range of documents and per dupe): cut every document into
NSP pairs (`nsp.PairBuilder`), drawing notNext spans from any other document of the same split
through the memory maps, and write the shards (`shards.ShardWriter`).

Determinism: every random choice for document d in dupe k comes from its own stream
`sequence_rng(seed, k, d)`, and the shard boundaries depend only on token counts, so the output
is byte-identical for any number of workers.

Held-out split: `heldout` whole documents (books) chosen with the seed go to eval/, and draw
their notNext spans only from each other, so no text of them leaks into train/.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.data.documents import expand_inputs, read_documents
from bertkit.data.masking import Masker, sequence_rng, word_starts_from_word_ids
from bertkit.data.nsp import Document, PairBuilder
from bertkit.data.shards import FORMAT, VERSION, NpyAppender, ShardWriter, id_dtype, write_manifest
from bertkit.errors import BertkitError

STATIC_MASK_STREAM = 1 << 40  # keeps static-masking streams apart from the pairing streams


@dataclass
class BuildSettings:
    max_seq_len: int = 128
    dupe_factor: int = 1
    short_seq_prob: float = 0.1
    seed: int = 12345
    doc_boundary: str = "file"
    heldout: int = 0
    static_masking: bool = False
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    whole_word_mask: bool = False
    shard_tokens: int = 4_000_000
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.max_seq_len < 8:
            raise BertkitError(f"--max-seq-len must be at least 8, got {self.max_seq_len}")
        if self.dupe_factor < 1:
            raise BertkitError(f"--dupe-factor must be at least 1, got {self.dupe_factor}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise BertkitError(f"--short-seq-prob must be in [0, 1], got {self.short_seq_prob}")
        if self.heldout < 0:
            raise BertkitError(f"--heldout must be >= 0 documents, got {self.heldout}")
        if self.doc_boundary not in ("file", "blank_line"):
            raise BertkitError(f"--doc-boundary must be 'file' or 'blank_line', got {self.doc_boundary!r}")


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what decides the ids: the vocabulary and the pipeline's classes and options."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    parts = [type(tokenizer.model).__name__, _describe(tokenizer.normalizer), _describe(tokenizer.pre_tokenizer), vocab]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _describe(component) -> Any:
    if component is None:
        return None
    simple = {k: v for k, v in sorted(vars(component).items()) if isinstance(v, (bool, int, float, str, type(None)))}
    return [type(component).__name__, simple]


# pass 1: tokenize ------------------------------------------------------------------------------------

_TOKENIZER = None


def _init_worker(tokenizer_dir: str, threads: int = 1) -> None:
    global _TOKENIZER
    from bertkit.tokenizers import Tokenizer

    _TOKENIZER = Tokenizer.from_pretrained(tokenizer_dir)


def _tokenize_file(task: tuple[int, str, str, str, int]) -> dict[str, int]:
    """One input file -> part-XXXXX.{ids,starts,sents,docs}.npy in the work folder."""
    index, path, doc_boundary, work, vocab_size = task
    tok = _TOKENIZER
    stem = Path(work) / f"part-{index:05d}"
    counts = {"documents": 0, "sentences": 0, "tokens": 0, "single_sentence_documents": 0}
    with (
        NpyAppender(f"{stem}.ids.npy", id_dtype(vocab_size)) as ids,
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


# pass 2: instances -----------------------------------------------------------------------------------

_CORPUS: TokenizedCorpus | None = None


def _init_instances_worker(work: str, num_parts: int) -> None:
    global _CORPUS
    _CORPUS = TokenizedCorpus(Path(work), num_parts)


def _instances_task(task: dict[str, Any]) -> dict[str, Any]:
    corpus = _CORPUS
    s: BuildSettings = task["settings"]
    builder = PairBuilder(s.max_seq_len, task["cls_id"], task["sep_id"], s.short_seq_prob)
    pool = np.load(task["pool"], mmap_mode="r")
    masker = Masker(**task["masker"]) if s.static_masking else None
    writer = ShardWriter(Path(task["folder"]), task["name"], task["vocab_size"], static_labels=s.static_masking)
    dtype = id_dtype(task["vocab_size"])
    for d in task["docs"]:
        rng = sequence_rng(s.seed, task["dupe"], int(d))
        for j, inst in enumerate(builder.instances(corpus, int(d), rng, random_pool=pool)):
            ids, labels = inst.ids, None
            if masker is not None:
                ids, labels = masker.mask_labels(
                    inst.ids, inst.starts, sequence_rng(s.seed, STATIC_MASK_STREAM + task["dupe"], int(d), j)
                )
            writer.add(
                ids.astype(dtype),
                inst.starts.astype(np.uint8),
                inst.len_a,
                inst.is_random_next,
                None if labels is None else labels.astype(np.int32),
            )
    return writer.close()


# the whole build ---------------------------------------------------------------------------------------


def _run(
    fn: Callable, tasks: Sequence, workers: int, init: Callable, init_args: tuple, desc: str, progress: bool
) -> list:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="task", dynamic_ncols=True)
    results = []
    try:
        if workers <= 1:
            init(*init_args)
            for t in tasks:
                results.append(fn(t))
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=init, initargs=init_args
            ) as pool:
                for r in pool.map(fn, tasks):
                    results.append(r)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def _ranges(doc_ids: np.ndarray, doc_tokens: np.ndarray, per_shard: int) -> list[np.ndarray]:
    """Split a list of documents into consecutive runs of about `per_shard` tokens each."""
    if len(doc_ids) == 0:
        return []
    total = int(doc_tokens[doc_ids].sum())
    n = max(1, math.ceil(total / per_shard))
    cum = np.cumsum(doc_tokens[doc_ids])
    cuts = np.searchsorted(cum, [total * k / n for k in range(1, n)], side="left") + 1
    return [r for r in np.split(doc_ids, cuts) if len(r)]


def build_pretraining_data(
    inputs: Iterable[str | os.PathLike],
    tokenizer_dir: str | os.PathLike,
    out: str | os.PathLike,
    settings: BuildSettings | None = None,
    workers: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build a pretraining data folder (see the module docstring); returns the manifest."""
    from bertkit.tokenizers import Tokenizer

    s = settings or BuildSettings()
    s.check()
    files = expand_inputs(inputs)
    out = Path(out)
    if (out / "manifest.json").exists() or (
        out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith("."))
    ):
        raise BertkitError(f"{out}: the output folder is not empty; choose a new --out or delete it")
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    specials = {name: tokenizer.token_to_id(name) for name in ("[CLS]", "[SEP]", "[MASK]", "[PAD]")}
    missing = [k for k, v in specials.items() if v is None]
    if missing:
        raise BertkitError(
            f"{tokenizer_dir}: the tokenizer lacks {', '.join(missing)}; BERT pretraining needs "
            "[CLS] [SEP] [MASK] [PAD] (train it with BERT's special tokens)"
        )
    vocab_size = len(tokenizer)
    workers = max(1, int(workers))
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    work.mkdir(exist_ok=True)
    try:
        tokenizer.save(out / "tokenizer")
        saved_dir = str(out / "tokenizer")  # workers load exactly what the data will name
        # pass 1
        tasks = [(i, str(f), s.doc_boundary, str(work), vocab_size) for i, f in enumerate(files)]
        counts = _run(_tokenize_file, tasks, workers, _init_worker, (saved_dir,), "tokenize", progress)
        corpus = TokenizedCorpus(work, len(files))
        totals = {k: sum(c[k] for c in counts) for k in counts[0]}
        if totals["documents"] == 0:
            raise BertkitError(
                f"the corpus is empty: no text in {len(files)} input file(s) "
                f"({', '.join(str(f) for f in files[:3])}{', ...' if len(files) > 3 else ''})"
            )
        n_sent = corpus.num_sentences()
        usable = np.flatnonzero(n_sent >= 2)
        if len(usable) < 2:
            raise BertkitError(
                f"only {len(usable)} of {totals['documents']} document(s) have two or more sentences; NSP pairs "
                "need at least 2 such documents (with one sentence per line and documents separated by "
                "blank lines, use --doc-boundary blank_line)"
            )
        if s.heldout and (s.heldout < 2 or len(usable) - s.heldout < 2):
            raise BertkitError(
                f"--heldout {s.heldout}: each split needs at least 2 documents of 2+ sentences "
                f"and the corpus has {len(usable)}"
            )
        rng = np.random.default_rng(s.seed)
        heldout = np.sort(rng.choice(usable, size=s.heldout, replace=False)) if s.heldout else np.zeros(0, np.int64)
        train_docs = np.setdiff1d(usable, heldout)
        doc_tokens = corpus.num_tokens()
        masker_opts = dict(
            vocab_size=vocab_size,
            mask_id=specials["[MASK]"],
            special_ids=list(tokenizer.all_special_ids),
            mlm_probability=s.masked_lm_prob,
            max_predictions=s.max_predictions_per_seq,
            whole_word=s.whole_word_mask,
        )
        # pass 2
        tasks2, splits = [], {}
        for split, docs in (("train", train_docs), ("eval", heldout)):
            if len(docs) == 0:
                continue
            (out / split).mkdir(exist_ok=True)
            pool_path = work / f"pool-{split}.npy"
            np.save(pool_path, docs)
            n = 0
            for dupe in range(s.dupe_factor):
                for run in _ranges(docs, doc_tokens, s.shard_tokens):
                    tasks2.append(
                        dict(
                            settings=s,
                            name=f"shard-{n:05d}",
                            folder=str(out / split),
                            docs=run.tolist(),
                            dupe=dupe,
                            pool=str(pool_path),
                            cls_id=specials["[CLS]"],
                            sep_id=specials["[SEP]"],
                            vocab_size=vocab_size,
                            masker=masker_opts,
                            split=split,
                        )
                    )
                    n += 1
        results = _run(
            _instances_task, tasks2, workers, _init_instances_worker, (str(work), len(files)), "instances", progress
        )
        for task, res in zip(tasks2, results):
            splits.setdefault(task["split"], {"shards": []})["shards"].append(res)
        for split, info in splits.items():
            info["instances"] = sum(r["instances"] for r in info["shards"])
            info["tokens"] = sum(r["tokens"] for r in info["shards"])
            info["not_next"] = sum(r["not_next"] for r in info["shards"])
            info["documents"] = int(len(train_docs) if split == "train" else len(heldout))
        if splits.get("train", {}).get("instances", 0) == 0:
            raise BertkitError("no training instances were made; the documents are too short for NSP pairs")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "tokenizer": {
                "fingerprint": tokenizer_fingerprint(tokenizer),
                "vocab_size": vocab_size,
                "special_ids": specials,
                "all_special_ids": list(tokenizer.all_special_ids),
                "source": str(tokenizer_dir),
            },
            "settings": {k: v for k, v in asdict(s).items() if k != "extra"} | s.extra,
            "inputs": {"files": len(files), **totals, "documents_used": int(len(usable))},
            "heldout_documents": [int(d) for d in heldout],
            "splits": splits,
        }
        write_manifest(out, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    train = splits["train"]
    log(
        f"{train['instances']:,} training instances ({train['tokens']:,} "
        f"tokens, notNext {train['not_next'] / train['instances']:.3f}) "
        f"from {len(train_docs)} documents"
        + (
            f"; {splits['eval']['instances']:,} held-out instances from {len(heldout)} documents"
            if "eval" in splits
            else ""
        )
        + f"; written to {out} in {time.time() - started:.1f} s"
    )
    return manifest
