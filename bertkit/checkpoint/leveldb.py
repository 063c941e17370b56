"""The two wire formats under a TensorFlow checkpoint index: LevelDB tables and protobuf messages.

An index is a LevelDB-format sorted table (SSTable): data blocks of prefix-compressed keys, an
index block pointing at them, a footer with a magic number. Blocks may be snappy-compressed and
carry a masked CRC-32C. The values are protobuf messages, decoded here into {field: [values]}.

Every length, offset and count read from the file is checked against the bytes that are there:
a damaged or crafted index raises ValueError with what is wrong (the caller names the file),
never an IndexError, a silent short read, or an unbounded allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from bertkit.checkpoint.crc32c import crc32c, unmask_crc

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
# the most a snappy stream can expand: a 3-byte copy element writes at most 64 bytes
SNAPPY_MAX_RATIO = 22

ProtoFields = dict[int, list[int | bytes]]


# ---------------------------------------------------------------------- protobuf wire format
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at buf[pos:] -> (value, position after it)."""
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


def parse_proto(buf: bytes) -> ProtoFields:
    """Protobuf message -> {field number: [values]}: varints and fixed-width fields as int,
    length-delimited fields as bytes (the caller checks which kind each field must be)."""
    fields: ProtoFields = {}
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise ValueError("truncated fixed-width field")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            value = bytes(buf[pos : pos + length])
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def proto_int(fields: ProtoFields, number: int, what: str, default: int | None = 0) -> int | None:
    """The last value of an integer field (protobuf's rule for repeated scalars), type-checked."""
    values = fields.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise ValueError(f"{what} is a byte string where a number belongs")
    return value


def proto_messages(fields: ProtoFields, number: int, what: str) -> list[bytes]:
    """Every value of a message (length-delimited) field, type-checked."""
    values = fields.get(number, [])
    if not all(isinstance(v, bytes) for v in values):
        raise ValueError(f"{what} is a number where a message belongs")
    return [v for v in values if isinstance(v, bytes)]


def as_int64(value: int) -> int:
    """A varint read as protobuf's int64 (two's complement in 64 bits)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


# ---------------------------------------------------------------------- snappy
def snappy_decompress(buf: bytes) -> bytes:
    """Snappy raw format: a varint length, then literal and back-reference elements.

    The output never grows past the declared length, and a declared length that these bytes
    cannot produce is refused before anything is decoded.
    """
    length, pos = read_varint(buf, 0)
    if length > SNAPPY_MAX_RATIO * len(buf):
        raise ValueError(f"snappy block declares {length} bytes, more than {len(buf)} compressed bytes can hold")
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
            if pos + n > len(buf):
                raise ValueError("truncated snappy literal")
            chunk = buf[pos : pos + n]
            pos += n
        else:
            if kind == 1:
                n, width, dist = 4 + ((tag >> 2) & 7), 1, (tag >> 5) << 8
            else:
                n, width, dist = (tag >> 2) + 1, (2 if kind == 2 else 4), 0
            if pos + width > len(buf):
                raise ValueError("truncated snappy copy")
            dist |= int.from_bytes(buf[pos : pos + width], "little")
            pos += width
            if dist == 0 or dist > len(out):
                raise ValueError("bad snappy back-reference")
            start = len(out) - dist
            # an overlapping copy repeats the last `dist` bytes
            chunk = bytes(out[start : start + n]) if dist >= n else (bytes(out[start:]) * (n // dist + 1))[:n]
        if len(out) + len(chunk) > length:
            raise ValueError(f"snappy block expands past its declared length of {length} bytes")
        out += chunk
    if len(out) != length:
        raise ValueError("snappy stream length mismatch")
    return bytes(out)


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
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise ValueError("block entry runs past its block")
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
