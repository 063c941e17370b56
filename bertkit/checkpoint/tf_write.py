"""Write TensorFlow checkpoints (tensor bundles): the format tf_bundle.py reads, written without TensorFlow.

A bundle written here has one data shard and an index of one uncompressed LevelDB data block,
every tensor with its CRC-32C. The encoders are small and public so that tests can build crafted
indexes (a shape given as a number, an offset given as bytes) from the same pieces.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bertkit.checkpoint.crc32c import crc32c, mask_crc
from bertkit.checkpoint.leveldb import TABLE_MAGIC
from bertkit.files import atomic_write_bytes

# numpy dtype -> TensorFlow DataType number (the inverse of tf_bundle.TF_DTYPES, bfloat16 aside)
NUMPY_TO_TF = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "int64": 9, "bool": 10}
NUMPY_TO_TF |= {"uint16": 17, "float16": 19}


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint (negative numbers as their 64-bit two's complement)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    """One protobuf field: a varint, a fixed32 (fixed32=True) or a length-delimited value."""
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if fixed32:
        return varint(number << 3 | 5) + value.to_bytes(4, "little")
    return varint(number << 3) + varint(value)


def shape_proto(shape: tuple[int, ...]) -> bytes:
    """TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }."""
    return b"".join(field(2, field(1, d)) for d in shape)


def entry_proto(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int, shard_id: int = 0) -> bytes:
    """BundleEntryProto: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6 (masked, fixed32)."""
    parts = [field(1, dtype), field(2, shape_proto(shape))]
    if shard_id:
        parts.append(field(3, shard_id))
    return b"".join(parts + [field(4, offset), field(5, size), field(6, mask_crc(crc), fixed32=True)])


def header_proto(num_shards: int = 1) -> bytes:
    """BundleHeaderProto: num_shards 1, endianness 2 (0 = little)."""
    return field(1, num_shards) + field(2, 0)


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block: prefix-shared keys and one restart point."""
    body, previous = bytearray(), b""
    for key, value in entries:
        shared = len(os.path.commonprefix([previous, key]))
        body += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(body) + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")


def table(blocks: list[list[tuple[bytes, bytes]]], compress: dict[int, bytes] | None = None) -> bytes:
    """A LevelDB table of data blocks (each a sorted list of entries), an index block and a footer.

    compress: {block number: already compressed contents} for blocks stored with snappy (type 1).
    """
    data, index = bytearray(), []

    def add(contents: bytes, kind: int = 0) -> bytes:
        handle = varint(len(data)) + varint(len(contents))
        data.extend(contents + bytes([kind]) + mask_crc(crc32c(contents + bytes([kind]))).to_bytes(4, "little"))
        return handle

    for n, entries in enumerate(blocks):
        packed = (compress or {}).get(n)
        index.append((entries[-1][0], add(packed, 1) if packed is not None else add(block(entries))))
    meta = add(block([]))
    idx = add(block(index))
    return bytes(data) + (meta + idx).ljust(40, b"\x00") + TABLE_MAGIC.to_bytes(8, "little")


def write_tf_checkpoint(prefix: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """PREFIX.index + PREFIX.data-00000-of-00001 holding `arrays` (little-endian, CRC-32C each)."""
    prefix = Path(prefix)
    data, entries = bytearray(), [(b"", header_proto())]
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()  # C order, whatever the layout
        entry = entry_proto(NUMPY_TO_TF[array.dtype.name], array.shape, len(data), len(raw), crc32c(raw))
        entries.append((name.encode(), entry))
        data += raw
    atomic_write_bytes(f"{prefix}.data-00000-of-00001", bytes(data))
    atomic_write_bytes(f"{prefix}.index", table([entries]))
    return prefix
