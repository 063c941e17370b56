"""Corpus -> pretraining data folder, in two streaming passes over worker processes.

Pass 1 (tokenize, one task per input file; bertkit.data.corpus): read documents, split
sentences, tokenize them and append the ids, word-start flags and sentence/document bounds to
memory-mappable parts in a work folder. Pass 2 (instances, one task per range of documents and
per dupe): cut every document into NSP pairs (`nsp.PairBuilder`), drawing notNext spans from any
other document of the same split through the memory maps, and write the shards
(`shards.ShardWriter`).

Determinism: every random choice for document d in dupe k comes from its own stream
`sequence_rng(seed, k, d)`, and the shard boundaries depend only on token counts, so the output
is byte-identical for any number of workers.

Held-out split: `heldout` whole documents (books) chosen with the random seed go to eval/, and draw
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
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bertkit.data.corpus import TokenizedCorpus, init_worker, tokenize_file
from bertkit.data.documents import expand_inputs
from bertkit.data.masking import Masker, sequence_rng, warn_if_capped
from bertkit.data.nsp import PairBuilder
from bertkit.data.settings import BuildSettings
from bertkit.data.shards import FORMAT, VERSION, ShardWriter, id_dtype, write_manifest
from bertkit.errors import BertkitError
from bertkit.files import require_new_folder
from bertkit.log import get_logger
from bertkit.tokenizers import Tokenizer

logger = get_logger(__name__)

STATIC_MASK_STREAM = 1 << 40  # keeps static-masking streams apart from the pairing streams


def id_bound(tokenizer: Any) -> int:
    """The largest token id + 1: the size of any table indexed by id (a sparse vocabulary's
    ids can run past its token count)."""
    return max(tokenizer.get_vocab().values(), default=-1) + 1


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides the ids: the vocabulary and the pipeline's classes and options."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    parts = [type(tokenizer.model).__name__, _describe(tokenizer.normalizer), _describe(tokenizer.pre_tokenizer), vocab]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _describe(component) -> Any:
    if component is None:
        return None
    simple = {k: v for k, v in sorted(vars(component).items()) if isinstance(v, (bool, int, float, str, type(None)))}
    return [type(component).__name__, simple]


# pass 2: instances -----------------------------------------------------------------------------------

_CORPUS: TokenizedCorpus | None = None


def _init_instances_worker(work: str, num_parts: int) -> None:
    global _CORPUS
    _CORPUS = TokenizedCorpus(Path(work), num_parts)


def _instances_task(task: dict[str, Any]) -> dict[str, Any]:
    corpus = _CORPUS
    assert corpus is not None, "_init_instances_worker runs first"
    s: BuildSettings = task["settings"]
    builder = PairBuilder(s.max_seq_len, task["cls_id"], task["sep_id"], s.short_seq_prob)
    pool = np.load(task["pool"], mmap_mode="r")
    masker = Masker(**task["masker"]) if s.static_masking else None
    dtype = id_dtype(task["id_bound"])
    with ShardWriter(Path(task["folder"]), task["name"], task["id_bound"], static_labels=s.static_masking) as writer:
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


# what build_pretraining_data writes into --out (and, with overwrite, replaces)
OUTPUTS = ("manifest.json", "tokenizer", "train", "eval")


def build_pretraining_data(
    inputs: Iterable[str | os.PathLike],
    tokenizer_dir: str | os.PathLike,
    out: str | os.PathLike,
    settings: BuildSettings | None = None,
    workers: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build a pretraining data folder (see the module docstring); returns the manifest.

    `out` must be new or empty unless `overwrite` (then an earlier build's files there are replaced).
    """
    s = settings or BuildSettings()
    s.check()
    files = expand_inputs(inputs)
    out = require_new_folder(out, overwrite=overwrite)
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
    specials = {name: tokenizer.token_to_id(name) for name in ("[CLS]", "[SEP]", "[MASK]", "[PAD]")}
    missing = [k for k, v in specials.items() if v is None]
    if missing:
        raise BertkitError(
            f"{tokenizer_dir}: the tokenizer lacks {', '.join(missing)}; BERT pretraining needs "
            "[CLS] [SEP] [MASK] [PAD] (train it with BERT's special tokens)"
        )
    if s.max_predictions is not None:
        warn_if_capped(s.mlm_probability, s.max_predictions, s.max_seq_len)
    started = time.time()
    for name in OUTPUTS:  # only with overwrite can an earlier build be here: none of it may mix in
        shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    work.mkdir(exist_ok=True)
    try:
        tokenizer.save(out / "tokenizer")
        info = {"tokenizer": tokenizer, "specials": specials, "id_bound": id_bound(tokenizer), "files": files}
        manifest = _build(
            s, out, work, str(out / "tokenizer"), info, workers, progress
        )  # workers load what the data names
        manifest["tokenizer"]["source"] = str(tokenizer_dir)
        write_manifest(out, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (log or logger.info)(_summary(manifest, out, time.time() - started))
    return manifest


def _build(
    s: BuildSettings, out: Path, work: Path, tok_dir: str, info: dict[str, Any], workers: int, progress: bool
) -> dict[str, Any]:
    """Both passes; returns the manifest (not yet written)."""
    files, bound, specials = info["files"], info["id_bound"], info["specials"]
    tasks = [(i, str(f), s.doc_boundary, str(work), bound) for i, f in enumerate(files)]
    counts = _run(tokenize_file, tasks, workers, init_worker, (tok_dir,), "tokenize", progress)
    corpus = TokenizedCorpus(work, len(files))
    totals = {k: sum(c[k] for c in counts) for k in counts[0]}
    usable, heldout = _choose_documents(s, corpus, totals["documents"], len(files), files)
    train_docs = np.setdiff1d(usable, heldout)
    doc_tokens = corpus.num_tokens()
    tokenizer = info["tokenizer"]
    masker_opts = dict(
        vocab_size=bound,
        mask_id=specials["[MASK]"],
        special_ids=list(tokenizer.all_special_ids),
        mlm_probability=s.mlm_probability,
        max_predictions=s.resolved_max_predictions(),
        whole_word=s.whole_word_mask,
    )
    tasks2 = []
    for split, docs in (("train", train_docs), ("eval", heldout)):
        if len(docs) == 0:
            continue
        (out / split).mkdir(exist_ok=True)
        pool_path = work / f"pool-{split}.npy"
        np.save(pool_path, docs)
        runs = [(dupe, r) for dupe in range(s.dupe_factor) for r in _ranges(docs, doc_tokens, s.shard_tokens)]
        for n, (dupe, run) in enumerate(runs):
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
                    id_bound=bound,
                    masker=masker_opts,
                    split=split,
                )
            )
    results = _run(
        _instances_task, tasks2, workers, _init_instances_worker, (str(work), len(files)), "instances", progress
    )
    splits: dict[str, dict[str, Any]] = {}
    for task, res in zip(tasks2, results):
        splits.setdefault(task["split"], {"shards": []})["shards"].append(res)
    for split, part in splits.items():
        for key in ("instances", "tokens", "not_next"):
            part[key] = sum(r[key] for r in part["shards"])
        part["documents"] = int(len(train_docs) if split == "train" else len(heldout))
    if splits.get("train", {}).get("instances", 0) == 0:
        raise BertkitError("no training instances were made; the documents are too short for NSP pairs")
    return {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": {
            "fingerprint": tokenizer_fingerprint(tokenizer),
            "vocab_size": len(tokenizer),
            "id_bound": bound,
            "special_ids": specials,
            "all_special_ids": list(tokenizer.all_special_ids),
        },
        "settings": {k: v for k, v in asdict(s).items() if k != "extra"} | s.extra,
        "inputs": {"files": len(files), **totals, "documents_used": int(len(usable))},
        "heldout_documents": [int(d) for d in heldout],
        "splits": splits,
    }


def _choose_documents(
    s: BuildSettings, corpus: TokenizedCorpus, documents: int, num_files: int, files: list[Path]
) -> tuple[np.ndarray, np.ndarray]:
    """Documents with 2+ sentences (NSP needs them), and the held-out ones among them."""
    if documents == 0:
        raise BertkitError(
            f"the corpus is empty: no text in {num_files} input file(s) "
            f"({', '.join(str(f) for f in files[:3])}{', ...' if num_files > 3 else ''})"
        )
    usable = np.flatnonzero(corpus.num_sentences() >= 2)
    if len(usable) < 2:
        raise BertkitError(
            f"only {len(usable)} of {documents} document(s) have two or more sentences; NSP pairs "
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
    return usable, heldout


def _summary(manifest: dict[str, Any], out: Path, seconds: float) -> str:
    splits = manifest["splits"]
    train = splits["train"]
    line = (
        f"{train['instances']:,} training instances ({train['tokens']:,} tokens, notNext "
        f"{train['not_next'] / train['instances']:.3f}) from {train['documents']} documents"
    )
    if "eval" in splits:
        line += f"; {splits['eval']['instances']:,} held-out instances from {splits['eval']['documents']} documents"
    return line + f"; written to {out} in {seconds:.1f} s"
