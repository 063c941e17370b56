"""Read TensorFlow checkpoints (the "tensor bundle" format) without TensorFlow.

A checkpoint `PREFIX` is two kinds of files:
- `PREFIX.index`: a LevelDB-format sorted table (SSTable). Its keys are variable names; each value
  is a `BundleEntryProto` protobuf (dtype, shape, shard, offset, size, crc32c). The entry under the
  empty key is a `BundleHeaderProto` (number of shards, byte order).
- `PREFIX.data-0000s-of-0000N`: the raw little-endian tensor bytes, concatenated.

Reading one needs three small decoders: LevelDB blocks and protobuf messages (leveldb.py) and
CRC-32C (crc32c.py), which checks every block of the index and every tensor of the data. Every
entry of the index is type- and range-checked when the index is opened, before any data is read.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertkit.checkpoint.crc32c import crc32c, unmask_crc
from bertkit.checkpoint.leveldb import as_int64, parse_proto, proto_int, proto_messages, read_table
from bertkit.errors import InputFileError

# tensorflow/core/framework/types.proto -> numpy little-endian dtype
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    14: np.dtype("<u2"),  # DT_BFLOAT16 (raw bits; widened to float32 on read)
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
}
DT_BFLOAT16 = 14
DT_STRING = 7


MAX_DIMS = 64  # more dimensions than any weight has: an index claiming them is damaged
MAX_SHARDS = 99_999  # the data file names have five digits


@dataclass
class BundleEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def parse_entry(name: str, buf: bytes, num_shards: int = 1) -> BundleEntry:
    """A BundleEntryProto, every field type- and range-checked (ValueError names what is wrong)."""
    f = parse_proto(buf)
    what = f"variable {name!r}"
    shape: list[int] = []
    for shape_proto in proto_messages(f, 2, f"{what}: the shape"):
        # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1; string name = 2; }
        for dim in proto_messages(parse_proto(shape_proto), 2, f"{what}: a dimension"):
            shape.append(as_int64(proto_int(parse_proto(dim), 1, f"{what}: a dimension's size") or 0))
    if len(shape) > MAX_DIMS:
        raise ValueError(f"{what} has {len(shape)} dimensions (at most {MAX_DIMS})")
    if any(d < 0 for d in shape):
        raise ValueError(f"{what} has a negative (unknown) dimension in shape {shape}")
    numbers = {}
    for number, field_name in ((1, "dtype"), (3, "shard_id"), (4, "offset"), (5, "size")):
        value = proto_int(f, number, f"{what}: {field_name}")
        numbers[field_name] = as_int64(value or 0)
        if numbers[field_name] < 0:
            raise ValueError(f"{what}: {field_name} {numbers[field_name]} is negative")
    if numbers["shard_id"] >= num_shards:
        raise ValueError(f"{what} is in shard {numbers['shard_id']}, but the checkpoint has {num_shards}")
    crc = proto_int(f, 6, f"{what}: crc32c", default=None)
    if crc is not None and crc >= 1 << 32:
        raise ValueError(f"{what}: crc32c {crc} does not fit in 32 bits")
    dtype = TF_DTYPES.get(numbers["dtype"])
    if dtype is not None and 7 not in f and math.prod(shape) * dtype.itemsize != numbers["size"]:
        raise ValueError(f"{what}: {numbers['size']} bytes do not hold shape {shape}")
    return BundleEntry(
        name=name,
        dtype=numbers["dtype"],
        shape=tuple(shape),
        shard_id=numbers["shard_id"],
        offset=numbers["offset"],
        size=numbers["size"],
        crc32c=crc,
        sliced=7 in f,
    )


def parse_header(buf: bytes) -> int:
    """The BundleHeaderProto -> number of shards (checked); big-endian bundles are refused."""
    header = parse_proto(buf)
    num_shards = proto_int(header, 1, "the header's num_shards", default=1) or 0
    if not 1 <= num_shards <= MAX_SHARDS:
        raise ValueError(f"the header says {num_shards} shards (1 to {MAX_SHARDS})")
    if proto_int(header, 2, "the header's endianness") != 0:
        raise ValueError("big-endian checkpoints are not supported")
    return num_shards


# ---------------------------------------------------------------------- the bundle
class TFCheckpoint:
    """A TensorFlow checkpoint opened for reading: names, shapes, and numpy arrays on demand."""

    def __init__(self, prefix: str | os.PathLike, verify: bool = True):
        self.prefix = Path(_find_prefix(Path(prefix)))
        self.index_path = Path(str(self.prefix) + ".index")
        self.verify = verify
        if not self.index_path.is_file():
            raise InputFileError(
                self.index_path,
                "missing; a TensorFlow checkpoint is PREFIX.index plus "
                "PREFIX.data-* files (e.g. bert_model.ckpt.index)",
            )
        try:
            data = self.index_path.read_bytes()
        except OSError as err:
            raise InputFileError(self.index_path, f"cannot read ({err.strerror})") from None
        self.entries: dict[str, BundleEntry] = {}
        self.num_shards = 1
        try:
            raw = list(read_table(data, verify=verify))
            for key, value in raw:  # the header sorts first (empty key), but do not rely on it
                if key == b"":
                    self.num_shards = parse_header(value)
            for key, value in raw:
                if key != b"":
                    name = key.decode("utf-8")
                    self.entries[name] = parse_entry(name, value, self.num_shards)
        except (ValueError, UnicodeDecodeError, struct.error, IndexError, OverflowError) as err:
            raise InputFileError(
                self.index_path, f"not a readable TensorFlow checkpoint index ({err}); download the checkpoint again"
            ) from None
        self._shards: dict[int, np.ndarray] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def _shard(self, shard: int) -> np.ndarray:
        if shard not in self._shards:
            path = self.data_path(shard)
            if not path.is_file():
                raise InputFileError(
                    path,
                    "missing data shard of the checkpoint; copy all "
                    f"{self.num_shards} .data-* files next to the .index",
                )
            # an empty file cannot be memory-mapped; it holds no bytes, which read() then reports
            empty = path.stat().st_size == 0
            self._shards[shard] = np.zeros(0, np.uint8) if empty else np.memmap(path, dtype=np.uint8, mode="r")
        return self._shards[shard]

    def _checked(self, name: str) -> tuple[BundleEntry, np.dtype]:
        """The entry of `name` with its numpy dtype, refused where it cannot be a weight."""
        entry = self.entries[name]
        if entry.sliced:
            raise InputFileError(
                self.index_path,
                f"variable {name!r} is stored in slices (partitioned); re-save the checkpoint without partitioning",
            )
        if entry.dtype not in TF_DTYPES:
            raise InputFileError(
                self.index_path,
                f"variable {name!r} has TensorFlow dtype {entry.dtype}, "
                "which bertkit does not read (strings/resources are not weights)",
            )
        return entry, TF_DTYPES[entry.dtype]  # its size was checked against the shape in parse_entry

    def read(self, name: str) -> np.ndarray:
        """The named variable as a numpy array (bfloat16 widened to float32), its CRC-32C checked."""
        entry, dtype = self._checked(name)
        shard = self._shard(entry.shard_id)
        if entry.offset + entry.size > len(shard):
            raise InputFileError(
                self.data_path(entry.shard_id),
                f"truncated: variable {name!r} needs bytes up to {entry.offset + entry.size}, file has {len(shard)}",
            )
        raw = shard[entry.offset : entry.offset + entry.size]
        if self.verify and entry.crc32c is not None and crc32c(raw) != unmask_crc(entry.crc32c):
            raise InputFileError(
                self.data_path(entry.shard_id),
                f"checksum mismatch for variable {name!r}; the file is corrupt, download it again",
            )
        array = np.array(raw).view(dtype).reshape(entry.shape)  # a writable copy
        if entry.dtype == DT_BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _find_prefix(path: Path) -> Path:
    """Accept the prefix itself, its .index file, or a folder holding exactly one checkpoint."""
    text = str(path)
    if text.endswith(".index"):
        return Path(text[: -len(".index")])
    if path.is_dir():
        found = sorted(path.glob("*.index"))
        if not found:
            raise InputFileError(
                path,
                "no TensorFlow checkpoint here (expected bert_model.ckpt.index and "
                "bert_model.ckpt.data-00000-of-00001)",
            )
        preferred = [p for p in found if p.name == "bert_model.ckpt.index"]
        if len(found) > 1 and not preferred:
            raise InputFileError(
                path,
                f"several checkpoints here ({', '.join(p.name for p in found)}); pass the prefix of the one to read",
            )
        return Path(str((preferred or found)[0])[: -len(".index")])
    return path
