"""The TF bundle reader on bundles written by tf_write: round trips, CRCs of large tensors, checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bertkit.checkpoint import crc32c as C
from bertkit.checkpoint import leveldb, tf_bundle, tf_write
from bertkit.errors import InputFileError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "google_bert_tiny"


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "bert/embeddings/word_embeddings": rng.standard_normal((3000, 128)).astype(np.float32),  # 1.5 MB
        "bert/pooler/dense/bias": rng.standard_normal(128).astype(np.float32),
        "global_step": np.array(7, dtype=np.int64),
        "half": rng.standard_normal((4, 5)).astype(np.float16),
        "transposed": rng.standard_normal((6, 4)).astype(np.float32).T,
        "flags": np.array([True, False, True]),
    }


def test_written_bundles_read_back_exactly(tmp_path):
    expected = arrays()
    tf_write.write_tf_checkpoint(tmp_path / "model.ckpt", expected)
    ckpt = tf_bundle.TFCheckpoint(tmp_path / "model.ckpt")
    assert ckpt.names() == sorted(expected)
    for name, array in expected.items():
        got = ckpt.read(name)
        assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array), name


@pytest.mark.parametrize("backend", ["wheel", "numpy"])
def test_a_bit_flip_in_a_tensor_over_1_mib_is_found(tmp_path, monkeypatch, backend):
    if backend == "numpy":
        monkeypatch.setattr(C, "_FAST", None)
    tf_write.write_tf_checkpoint(tmp_path / "model.ckpt", arrays())
    name = "bert/embeddings/word_embeddings"
    entry = tf_bundle.TFCheckpoint(tmp_path / "model.ckpt").entries[name]
    assert entry.size > 1 << 20
    shard = tmp_path / "model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[entry.offset + entry.size - 3] ^= 0x01  # near the end, past the first MiB
    shard.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match=f"checksum mismatch for variable '{name}'"):
        tf_bundle.TFCheckpoint(tmp_path / "model.ckpt").read(name)
    unverified = tf_bundle.TFCheckpoint(tmp_path / "model.ckpt", verify=False).read(name)
    assert not np.array_equal(unverified, arrays()[name])  # read as asked, damage and all


def test_numpy_crc_reads_the_google_fixture(monkeypatch):
    monkeypatch.setattr(C, "_FAST", None)
    ckpt = tf_bundle.TFCheckpoint(FIXTURE)
    assert all(ckpt.read(name) is not None for name in ckpt.names())


def _index_with(tmp_path: Path, entry: bytes, header: bytes | None = None) -> Path:
    items = [(b"", header or tf_write.header_proto()), (b"w", entry)]
    (tmp_path / "m.ckpt.index").write_bytes(tf_write.table([items]))
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(b"\0" * 8)
    return tmp_path / "m.ckpt"


@pytest.mark.parametrize(
    "entry,header,message",
    [
        (tf_write.entry_proto(1, (2,), 0, 8, 0) + tf_write.field(6, 1 << 40), None, "does not fit in 32 bits"),
        (tf_write.entry_proto(1, (2,), 0, 7, 0), None, "7 bytes do not hold shape"),
        (tf_write.entry_proto(1, (2,), -5, 8, 0), None, "offset -5 is negative"),
        (tf_write.entry_proto(1, (2,), 0, 8, 0), tf_write.field(1, 0), "says 0 shards"),
        (tf_write.entry_proto(1, (2,), 0, 8, 0), tf_write.field(1, 1) + tf_write.field(2, 1), "big-endian"),
        (tf_write.field(2, b"\x12\x05\x08"), None, "truncated"),
    ],
)
def test_crafted_entries_are_refused_when_the_index_is_opened(tmp_path, entry, header, message):
    prefix = _index_with(tmp_path, entry, header)
    with pytest.raises(InputFileError, match=f"m.ckpt.index: not a readable TensorFlow checkpoint index.*{message}"):
        tf_bundle.TFCheckpoint(prefix)


def test_a_missing_second_shard_is_named(tmp_path):
    entry = tf_write.entry_proto(1, (2,), 0, 8, 0, shard_id=1)
    prefix = _index_with(tmp_path, entry, tf_write.header_proto(num_shards=2))
    (tmp_path / "m.ckpt.data-00000-of-00001").rename(tmp_path / "m.ckpt.data-00000-of-00002")
    with pytest.raises(InputFileError, match=r"m\.ckpt\.data-00001-of-00002: missing data shard"):
        tf_bundle.TFCheckpoint(prefix).read("w")


def test_snappy_overlapping_and_long_copies():
    # literal "ab", then a copy of 64 bytes from distance 2 (overlaps its own output)
    stream = tf_write.varint(66) + bytes([1 << 2]) + b"ab" + bytes([(63 << 2) | 2]) + (2).to_bytes(2, "little")
    assert leveldb.snappy_decompress(stream) == b"ab" * 33
    with pytest.raises(ValueError, match="more than"):
        leveldb.snappy_decompress(tf_write.varint(10**9) + b"\0\0")
    with pytest.raises(ValueError, match="bad snappy back-reference"):
        leveldb.snappy_decompress(tf_write.varint(8) + bytes([(7 << 2) | 2]) + (9).to_bytes(2, "little"))


def test_a_folder_with_two_checkpoints_needs_the_prefix(tmp_path):
    folder = tmp_path / "two"
    shutil.copytree(FIXTURE, folder)
    tf_write.write_tf_checkpoint(folder / "other.ckpt", {"x": np.zeros(2, np.float32)})
    assert tf_bundle.TFCheckpoint(folder).prefix.name == "bert_model.ckpt"  # Google's name wins
    (folder / "bert_model.ckpt.index").rename(folder / "third.ckpt.index")
    with pytest.raises(InputFileError, match="several checkpoints here"):
        tf_bundle.TFCheckpoint(folder)
