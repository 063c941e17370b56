"""Read TensorFlow checkpoints (the "tensor bundle" format) without TensorFlow.

A checkpoint `PREFIX` is two kinds of files:
- `PREFIX.index`: a LevelDB-format sorted table (SSTable). Its keys are variable names; each value
  is a `BundleEntryProto` protobuf (dtype, shape, shard, offset, size, crc32c). The entry under the
  empty key is a `BundleHeaderProto` (number of shards, byte order).
- `PREFIX.data-0000s-of-0000N`: the raw little-endian tensor bytes, concatenated.

So reading one needs three small decoders, all below: LevelDB blocks, protobuf wire format, and
CRC-32C (Castagnoli) to check what we read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertkit.errors import InputFileError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c

# tensorflow/core/framework/types.proto -> numpy little-endian dtype
TF_DTYPES = {
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


# ---------------------------------------------------------------------- CRC-32C
def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of `data` (byte-at-a-time: fine for index blocks and small tensors)."""
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """LevelDB/TF store crc32c "masked" (rotated + offset) so that CRCs of CRCs stay useful."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------------- protobuf wire format
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def parse_proto(buf: bytes) -> dict[int, list]:
    """Protobuf message -> {field number: [values]}; varints as int, length-delimited as bytes."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = bytes(buf[pos : pos + length])
            if len(value) != length:
                raise ValueError("truncated length-delimited field")
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


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


def parse_entry(name: str, buf: bytes) -> BundleEntry:
    f = parse_proto(buf)
    shape: list[int] = []
    if 2 in f:  # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1; string name = 2; }
        for dim in parse_proto(f[2][0]).get(2, []):
            size = parse_proto(dim).get(1, [0])[0]
            shape.append(size - (1 << 64) if size >= 1 << 63 else size)
    return BundleEntry(
        name=name,
        dtype=f.get(1, [0])[0],
        shape=tuple(shape),
        shard_id=f.get(3, [0])[0],
        offset=f.get(4, [0])[0],
        size=f.get(5, [0])[0],
        crc32c=f.get(6, [None])[0],
        sliced=7 in f,
    )


# ---------------------------------------------------------------------- LevelDB table
def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, verify: bool) -> bytes:
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(data):
        raise ValueError("block runs past the end of the file (truncated index)")
    contents = data[offset:end]
    kind = data[end]
    if verify:
        stored = struct.unpack_from("<I", data, end + 1)[0]
        if crc32c(data[offset : end + 1]) != unmask_crc(stored):
            raise ValueError(f"checksum mismatch in block at byte {offset}")
    if kind == 1:
        return snappy_decompress(contents)
    if kind != 0:
        raise ValueError(f"unknown block compression type {kind}")
    return contents


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ValueError("block too short")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise ValueError("bad restart count in block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def read_table(data: bytes, verify: bool = True) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-format table held in `data`, in key order."""
    if len(data) < FOOTER_SIZE:
        raise ValueError("file too short to be a table")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise ValueError("bad magic number (not a TensorFlow checkpoint index)")
    _, _, pos = _block_handle(footer, 0)  # metaindex: unused (no filters in bundles)
    index_offset, index_size, _ = _block_handle(footer, pos)
    index = _read_block(data, index_offset, index_size, verify)
    for _, handle in _block_entries(index):
        offset, size, _ = _block_handle(handle, 0)
        yield from _block_entries(_read_block(data, offset, size, verify))


def snappy_decompress(buf: bytes) -> bytes:
    """Snappy raw format: a varint length, then literal and back-reference elements."""
    length, pos = read_varint(buf, 0)
    out = bytearray()
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(buf[pos : pos + extra], "little")
                pos += extra
            n += 1
            out += buf[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            n = 4 + ((tag >> 2) & 7)
            dist = ((tag >> 5) << 8) | buf[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            dist = int.from_bytes(buf[pos : pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            dist = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        if dist == 0 or dist > len(out):
            raise ValueError("bad snappy back-reference")
        for _ in range(n):  # byte by byte: copies may overlap their own output
            out.append(out[-dist])
    if len(out) != length:
        raise ValueError("snappy stream length mismatch")
    return bytes(out)


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
            for key, value in read_table(data, verify=verify):
                if key == b"":
                    header = parse_proto(value)
                    self.num_shards = header.get(1, [1])[0]
                    if header.get(2, [0])[0] != 0:
                        raise ValueError("big-endian checkpoints are not supported")
                    continue
                name = key.decode("utf-8")
                self.entries[name] = parse_entry(name, value)
        except (ValueError, UnicodeDecodeError, struct.error, IndexError) as err:
            raise InputFileError(
                self.index_path, f"not a readable TensorFlow checkpoint index ({err}); download the checkpoint again"
            ) from None
        self._shards: dict[int, np.memmap] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def _shard(self, shard: int) -> np.memmap:
        if shard not in self._shards:
            path = self.data_path(shard)
            if not path.is_file():
                raise InputFileError(
                    path,
                    "missing data shard of the checkpoint; copy all "
                    f"{self.num_shards} .data-* files next to the .index",
                )
            self._shards[shard] = np.memmap(path, dtype=np.uint8, mode="r")
        return self._shards[shard]

    def read(self, name: str) -> np.ndarray:
        """The named variable as a numpy array (bfloat16 widened to float32)."""
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
        dtype = TF_DTYPES[entry.dtype]
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != entry.size:
            raise InputFileError(
                self.index_path, f"variable {name!r}: {entry.size} bytes do not hold shape {list(entry.shape)}"
            )
        shard = self._shard(entry.shard_id)
        if entry.offset + entry.size > len(shard):
            raise InputFileError(
                self.data_path(entry.shard_id),
                f"truncated: variable {name!r} needs bytes up to {entry.offset + entry.size}, file has {len(shard)}",
            )
        raw = shard[entry.offset : entry.offset + entry.size]
        if self.verify and entry.crc32c is not None and entry.size <= 1 << 20:  # pure-Python CRC: small tensors only
            if crc32c(raw.tobytes()) != unmask_crc(entry.crc32c):
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
