"""CRC-32C (Castagnoli): the checksum of LevelDB blocks and of every tensor in a TensorFlow checkpoint.

One function, `crc32c(data)`, three ways to compute it, fastest first:
- the `google-crc32c` (or `crc32c`) wheel, which uses the CPU's CRC instructions (the `crc` extra);
- `crc32c_lanes`: numpy, K lanes at once. CRC is linear over GF(2): the register after some
  bytes is the xor of what each byte contributes, and moving a contribution past n more bytes is
  one fixed linear map on 32 bits (Z_n, "feed n zero bytes"), applied to whole arrays through two
  16-bit tables. So K interleaved streams of words advance together, one numpy step per row;
- `crc32c_reference`: byte at a time, the definition the other two are tested against.

All three take `crc`, the checksum of the bytes before `data`, to continue a running checksum.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

POLY = 0x82F63B78  # the Castagnoli polynomial, bit-reflected
MASK_DELTA = 0xA282EAD8  # LevelDB's masking constant
_LANES_FROM = 4096  # below this many bytes the reference loop is as quick as setting up lanes


def _byte_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _byte_table()
_TABLE_NP = np.array(_TABLE, dtype=np.uint32)


def crc32c_reference(data: Any, crc: int = 0) -> int:
    """CRC-32C of a bytes-like `data`, one byte per step (the definition)."""
    reg = crc ^ 0xFFFFFFFF
    table = _TABLE
    for b in memoryview(data).cast("B"):
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg ^ 0xFFFFFFFF


# ---------------------------------------------------------------------- linear maps on the register
# A linear map on 32-bit registers is stored as its 32 columns: the images of 1 << i.
def _apply(columns: list[int], x: int) -> int:
    out, i = 0, 0
    while x:
        if x & 1:
            out ^= columns[i]
        x >>= 1
        i += 1
    return out


def _compose(a: list[int], b: list[int]) -> list[int]:
    """The map x -> a(b(x))."""
    return [_apply(a, column) for column in b]


_ONE_ZERO_BYTE = [_TABLE[(1 << i) & 0xFF] ^ ((1 << i) >> 8) for i in range(32)]


def _zeros_map(n: int) -> list[int]:
    """The map that feeding n zero bytes applies to the register (square and multiply)."""
    result = [1 << i for i in range(32)]
    power = _ONE_ZERO_BYTE
    while n:
        if n & 1:
            result = _compose(power, result)
        n >>= 1
        if n:
            power = _compose(power, power)
    return result


def _half_tables(columns: list[int]) -> np.ndarray:
    """[2, 65536] tables so that map(x) = T[0][x & 0xFFFF] ^ T[1][x >> 16]."""
    tables = np.zeros((2, 1 << 16), dtype=np.uint32)
    for k in range(2):
        values = np.zeros(1, dtype=np.uint32)
        for bit in range(16):
            values = np.concatenate([values, values ^ np.uint32(columns[16 * k + bit])])
        tables[k] = values
    return tables


def crc32c_lanes(data: Any, crc: int = 0) -> int:
    """CRC-32C with numpy, K lanes at once (see the module docstring).

    The body is read as rows of K little-endian 32-bit words, each row contiguous: lane k holds
    words k, k + K, k + 2K, ... Its state s_k steps as s_k = Z(s_k) ^ word, where Z feeds the 4K
    bytes between two of its words; the K final states, read as 4K bytes, have the body's CRC.
    """
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = len(buf)
    if n < _LANES_FROM:
        return crc32c_reference(buf, crc)
    lanes = 1 << min(16, (n // 256).bit_length() - 1)  # a power of two, at least 64 rows
    rows = n // (4 * lanes)
    words = buf[: rows * lanes * 4].view("<u4").reshape(rows, lanes)
    low, high = _half_tables(_zeros_map(4 * lanes))
    state = words[0].copy()
    halves = state.view("<u2")  # [low, high, low, high, ...]: the words are little-endian
    shifted, part = np.empty_like(state), np.empty_like(state)
    for row in words[1:]:
        np.take(low, halves[0::2], out=shifted)
        np.take(high, halves[1::2], out=part)
        np.bitwise_xor(shifted, part, out=state)
        state ^= row
    body = crc32c_lanes(state.astype("<u4").tobytes(), 0xFFFFFFFF) ^ 0xFFFFFFFF  # g(0, body)
    rest = buf[rows * lanes * 4 :]
    total = _apply(_zeros_map(n), crc ^ 0xFFFFFFFF) ^ _apply(_zeros_map(len(rest)), body)
    total ^= crc32c_reference(rest, 0xFFFFFFFF) ^ 0xFFFFFFFF  # the tail's own contribution
    return total ^ 0xFFFFFFFF


def _wheel() -> tuple[str, Callable[[Any, int], int]] | None:
    """The installed CRC-32C wheel, if any: google-crc32c first, then crc32c."""
    try:
        google = importlib.import_module("google_crc32c")
        if getattr(google, "implementation", "c") == "c":  # its pure-Python fallback is slower than lanes
            return "google-crc32c", lambda data, crc: int(google.extend(crc, data))
    except ImportError:
        pass
    try:
        other = importlib.import_module("crc32c")
        return "crc32c", lambda data, crc: int(other.crc32c(data, value=crc))
    except ImportError:
        return None


_FAST = _wheel()
BACKEND = _FAST[0] if _FAST else "numpy"


def crc32c(data: Any, crc: int = 0) -> int:
    """CRC-32C of a bytes-like `data` (bytes, memoryview, a numpy uint8 array), continuing `crc`."""
    if _FAST is not None:
        return _FAST[1](data, crc)
    return crc32c_lanes(data, crc)


def unmask_crc(masked: int) -> int:
    """LevelDB and TensorFlow store checksums "masked" (rotated, offset) so that CRCs of CRCs stay useful."""
    rot = (masked - MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """The inverse of `unmask_crc` (for writing test files)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF
