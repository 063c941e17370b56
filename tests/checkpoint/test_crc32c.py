"""CRC-32C: the numpy lanes and the wheel agree with the byte-at-a-time definition."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bertkit.checkpoint import crc32c as C

SIZES = [0, 1, 7, 4095, 4096, 4097, 65_536 + 3, 300_001, (1 << 20) + 5]


@pytest.mark.parametrize("fn", [C.crc32c_reference, C.crc32c_lanes, C.crc32c])
def test_standard_check_value(fn):
    assert fn(b"123456789") == 0xE3069283  # RFC 3720's CRC-32C of "123456789"
    assert fn(b"") == 0


@pytest.mark.parametrize("n", SIZES)
def test_lanes_and_wheel_equal_the_reference(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    expected = C.crc32c_reference(data)
    assert C.crc32c_lanes(data) == expected
    assert C.crc32c(data) == expected
    # continuing a running checksum over a split at any point
    cut = n // 3
    assert C.crc32c_lanes(data[cut:], C.crc32c_lanes(data[:cut])) == expected
    assert C.crc32c(data[cut:], C.crc32c(data[:cut])) == expected


def test_a_single_flipped_bit_changes_the_checksum():
    data = bytearray(np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
    before = C.crc32c_lanes(data)
    data[777_777] ^= 0x10
    assert C.crc32c_lanes(data) != before


def test_reads_numpy_arrays_and_read_only_memory_maps(tmp_path):
    data = np.random.default_rng(2).integers(0, 256, 100_000, dtype=np.uint8)
    path = tmp_path / "x.bin"
    path.write_bytes(data.tobytes())
    mapped = np.memmap(path, dtype=np.uint8, mode="r")[10:90_000]
    expected = C.crc32c_reference(data[10:90_000].tobytes())
    assert C.crc32c_lanes(mapped) == C.crc32c(mapped) == expected


def test_mask_round_trip():
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert C.unmask_crc(C.mask_crc(crc)) == crc


def test_the_wheel_is_used_when_installed():
    if importlib.util.find_spec("google_crc32c") is None and importlib.util.find_spec("crc32c") is None:
        assert C.BACKEND == "numpy"
    else:
        assert C.BACKEND in ("google-crc32c", "crc32c")
