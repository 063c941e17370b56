"""Sharded, memory-mapped storage of pretraining instances (plain .npy files + a JSON manifest).

A data folder written by `bertkit pretrain-data` looks like

    manifest.json                      format, tokenizer fingerprint, settings, counts, shard list
    tokenizer/                         the tokenizer the ids belong to
    train/shard-00000.ids.npy          all token ids of the shard, concatenated      [N] uint16|int32
    train/shard-00000.starts.npy       1 where a token begins a word (whole-word masking) [N] uint8
    train/shard-00000.index.npy        one row per instance: offset, length, len_a, notNext  [M, 4] int64
    train/shard-00000.labels.npy       (static masking only) original id where masked, else -100 [N] int32
    eval/...                           the same for the held-out documents

Instances are stored unpadded, back to back, so a batch is padded only to its own longest row.
Every array is a standard .npy file, opened with `np.load(..., mmap_mode="r")`: a corpus far
larger than RAM costs only the pages a batch touches. Writers append in a streaming way
(`NpyAppender` patches the .npy header when the file is closed), so building never holds more
than one document's tokens in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from tokenize import TokenError
from typing import Any

import numpy as np

from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_path, atomic_write_text

FORMAT = "bertkit-pretraining-data"
VERSION = 1
_HEADER = 128  # bytes reserved for the .npy header; enough for any 1-D or 2-D shape


class NpyAppender:
    """Append arrays to a .npy file of unknown final length; the header is written on close.

    Rows are appended along the first axis; the trailing shape and dtype are fixed at creation.
    The file is written under a temporary name and renamed into place (fsynced) on a clean
    close, so a build cut by a kill or a full disk never leaves a truncated shard under its name.
    """

    def __init__(self, path: str | os.PathLike, dtype: np.dtype | type, row_shape: tuple[int, ...] = ()):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._fh = self._stack.enter_context(open(tmp, "wb"))
        self._fh.write(b"\0" * _HEADER)

    def append(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        if array.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path}: rows of shape {array.shape[1:]} appended to rows of {self.row_shape}")
        self._fh.write(array.tobytes())
        self.rows += len(array)

    def close(self) -> None:
        if self._fh.closed:
            return
        shape = (self.rows,) + self.row_shape
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        text = repr(header).encode("latin1")
        # magic (6) + version (2) + header length (2) + text + padding + newline == _HEADER
        pad = _HEADER - 10 - len(text) - 1
        if pad < 0:
            raise ValueError("shape too large for the reserved .npy header")
        self._fh.seek(0)
        self._fh.write(b"\x93NUMPY\x01\x00" + (_HEADER - 10).to_bytes(2, "little") + text + b" " * pad + b"\n")
        self._stack.close()  # closes the file, fsyncs it and renames it into place

    def abort(self, *exc: Any) -> None:
        """Drop the temporary file (an error while building)."""
        self._stack.__exit__(*(exc or (BertkitError, BertkitError("aborted"), None)))

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort(kind, err, tb)


def id_dtype(id_bound: int) -> np.dtype:
    """The smallest dtype that holds ids 0 .. id_bound - 1 (the largest id + 1, not the count:
    a sparse vocabulary can have ids far above its size)."""
    return np.dtype(np.uint16) if id_bound <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


class ShardWriter:
    """Writes one shard of instances (ids, word starts, index rows, optional static labels)."""

    def __init__(self, folder: Path, name: str, id_bound: int, static_labels: bool = False):
        self.name = name
        self.ids = NpyAppender(folder / f"{name}.ids.npy", id_dtype(id_bound))
        self.starts = NpyAppender(folder / f"{name}.starts.npy", np.uint8)
        self.index = NpyAppender(folder / f"{name}.index.npy", np.int64, (4,))
        self.labels = NpyAppender(folder / f"{name}.labels.npy", np.int32) if static_labels else None
        self.instances = 0
        self.tokens = 0
        self.not_next = 0

    def add(
        self, ids: np.ndarray, starts: np.ndarray, len_a: int, not_next: bool, labels: np.ndarray | None = None
    ) -> None:
        self.index.append(np.array([[self.tokens, len(ids), len_a, int(not_next)]], dtype=np.int64))
        self.ids.append(ids)
        self.starts.append(starts)
        if self.labels is not None:
            if labels is None:
                raise BertkitError(f"shard {self.name}: static masking needs the labels of every instance")
            self.labels.append(labels)
        self.instances += 1
        self.tokens += len(ids)
        self.not_next += int(not_next)

    def close(self) -> dict[str, Any]:
        for f in (self.ids, self.starts, self.index, self.labels):
            if f is not None:
                f.close()
        return {"name": self.name, "instances": self.instances, "tokens": self.tokens, "not_next": self.not_next}

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        if kind is not None:  # an error mid-shard: no file of it reaches its final name
            for f in (self.ids, self.starts, self.index, self.labels):
                if f is not None:
                    f.abort(kind, err, tb)


# manifest ------------------------------------------------------------------------------------------


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """manifest.json, checked: the keys every reader uses, and shard names that stay in the folder."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputFileError(
            folder, "not a pretraining data folder (no manifest.json); build one with `bertkit pretrain-data`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"not valid JSON ({err}); rebuild the folder with `bertkit pretrain-data`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InputFileError(
            path, f"not a {FORMAT} v{VERSION} manifest; rebuild the folder with `bertkit pretrain-data`"
        )
    _check_manifest(path, manifest)
    return manifest


_MANIFEST_KEYS = {"tokenizer": ("fingerprint", "vocab_size"), "settings": ("max_seq_len",), "splits": ()}


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    def bad(problem: str) -> InputFileError:
        return InputFileError(path, f"{problem}; rebuild the folder with `bertkit pretrain-data`")

    for key, inner in _MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), dict):
            raise bad(f"{key!r} is missing or not an object")
        missing = [k for k in inner if k not in manifest[key]]
        if missing:
            raise bad(f"{key!r} lacks {', '.join(map(repr, missing))}")
    tok = manifest["tokenizer"]
    if not all(isinstance(tok[k], int) and tok[k] > 0 for k in ("vocab_size", "id_bound") if k in tok):
        raise bad("tokenizer.vocab_size or id_bound is not a positive whole number")
    if not isinstance(manifest["settings"]["max_seq_len"], int) or manifest["settings"]["max_seq_len"] < 8:
        raise bad("settings.max_seq_len is not a length")
    for split, info in manifest["splits"].items():
        shards = info.get("shards") if isinstance(info, dict) else None
        if not isinstance(shards, list):
            raise bad(f"split {split!r} has no shard list")
        for shard in shards:
            if not isinstance(shard, dict) or not all(isinstance(shard.get(k), int) for k in ("instances", "tokens")):
                raise bad(f"split {split!r}: a shard entry lacks its name, instances or tokens")
            if not _plain_name(shard.get("name")) or not _plain_name(split):
                raise bad(f"shard name {split}/{shard.get('name')!r} is not a plain file name inside the folder")


def _plain_name(name: object) -> bool:
    """A name that can only mean a file in this folder: no separators, no leading dot, not absolute."""
    return (
        isinstance(name, str)
        and bool(name)
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not os.path.isabs(name)
    )


# reading -------------------------------------------------------------------------------------------


class PretrainingData:
    """The instances of one split, memory-mapped: `data[i]` -> (ids, starts, len_a, not_next, labels).

    Opening a split checks each shard once, vectorised: the files' lengths against the manifest,
    every index row's bounds (offset, length, len(A), label), the ids against the vocabulary
    (and that the ids' dtype can hold the tokenizer's largest id).
    """

    def __init__(self, folder: str | os.PathLike, split: str = "train"):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        info = self.manifest["splits"].get(split)
        if info is None or not info["shards"]:
            raise BertkitError(
                f"{self.folder}: the data has no {split!r} instances"
                + (" (build it with --heldout N to get an eval split)" if split == "eval" else "")
            )
        self.split = split
        self.static = bool(self.manifest["settings"].get("static_masking"))
        tok = self.manifest["tokenizer"]
        self.id_bound = int(tok.get("id_bound", tok["vocab_size"]))
        self._shards = [self._open(shard) for shard in info["shards"]]
        self._ends = np.cumsum([shard["instances"] for shard in info["shards"]])
        self.lengths = np.concatenate([s["index"][:, 1] for s in self._shards]).astype(np.int64)  # [M]
        self.labels_nsp = np.concatenate([s["index"][:, 3] for s in self._shards]).astype(np.int64)

    def _open(self, shard: dict[str, Any]) -> dict[str, np.ndarray]:
        stem = self.folder / self.split / shard["name"]
        arrays = {}
        for kind in ("ids", "starts", "index") + (("labels",) if self.static else ()):
            path = stem.with_name(f"{shard['name']}.{kind}.npy")
            try:
                arrays[kind] = np.load(path, mmap_mode="r")
            # numpy parses the header as Python; a shape beyond C's integers overflows
            except (OSError, ValueError, EOFError, SyntaxError, TokenError, OverflowError) as err:
                raise InputFileError(path, f"missing or unreadable ({err}); rebuild the data folder") from None
        index, ids = arrays["index"], arrays["ids"]
        if index.ndim != 2 or index.shape[1] != 4 or len(index) != shard["instances"] or len(ids) != shard["tokens"]:
            raise InputFileError(stem, "shard size differs from manifest.json (an interrupted build?); rebuild it")
        if ids.dtype.kind not in "iu" or (ids.dtype.kind == "u" and np.iinfo(ids.dtype).max < self.id_bound - 1):
            raise InputFileError(
                stem,
                f"ids stored as {ids.dtype} cannot hold the tokenizer's ids (up to {self.id_bound - 1}); rebuild it",
            )
        offset, length, len_a, not_next = (index[:, k] for k in range(4))
        if len(index) and (
            (offset < 0).any()
            or (length < 2).any()
            or (offset + length > len(ids)).any()
            or (len_a < 1).any()
            or (len_a >= length).any()
            or ((not_next != 0) & (not_next != 1)).any()
        ):
            raise InputFileError(stem.with_name(f"{shard['name']}.index.npy"), "index rows out of bounds; rebuild it")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= self.id_bound):
            raise InputFileError(
                stem.with_name(f"{shard['name']}.ids.npy"), f"ids outside the vocabulary (0..{self.id_bound - 1})"
            )
        return arrays

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = int(np.searchsorted(self._ends, i, side="right"))
        shard = self._shards[s]
        offset, length, len_a, not_next = (int(x) for x in shard["index"][i - (self._ends[s - 1] if s else 0)])
        ids = np.asarray(shard["ids"][offset : offset + length], dtype=np.int64)
        starts = np.asarray(shard["starts"][offset : offset + length], dtype=bool)
        labels = np.asarray(shard["labels"][offset : offset + length], dtype=np.int64) if self.static else None
        return ids, starts, len_a, not_next, labels

    def __iter__(self) -> Iterator[tuple]:
        for i in range(len(self)):
            yield self[i]

    def token_counts(self, vocab_size: int) -> np.ndarray:
        """How often each id occurs in this split: [vocab_size] int64, one pass over the mapped shards."""
        counts = np.zeros(vocab_size, dtype=np.int64)
        for shard in self._shards:
            ids = shard["ids"]
            for start in range(0, len(ids), 1 << 24):  # bounded memory for huge shards
                counts += np.bincount(np.asarray(ids[start : start + (1 << 24)], dtype=np.int64), minlength=vocab_size)[
                    :vocab_size
                ]
        return counts
