"""Checkpoints under attack: damaged or crafted weights, shard indexes, TF bundles, config.json, and
the writers (save_pretrained on a full disk, convert into a folder that holds a user's files)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from harness import Case

import bertkit.model as bk
from bertkit.checkpoint import tf_write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "bertkit_v0_1_tiny"  # config.json + model.safetensors of a 3-label classifier
GOOGLE = FIXTURES / "google_bert_tiny"
EMBEDDINGS = "bert/embeddings/word_embeddings"


# ---------------------------------------------------------------------- Hugging Face folders
def _hf(tmp: Path) -> Path:
    folder = tmp / "m"
    shutil.copytree(TINY, folder)
    return folder


def _damaged_safetensors(kind: str):
    def setup(tmp: Path) -> Path:
        folder = _hf(tmp)
        path = folder / "model.safetensors"
        data = path.read_bytes()
        damaged = {"truncated": data[: len(data) // 2], "header": b"\xff" * 16 + data[16:], "empty": b""}[kind]
        path.write_bytes(damaged)
        return folder

    return setup


def _sharded(weight_map: Any):
    def setup(tmp: Path) -> Path:
        folder = _hf(tmp)
        (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
        return folder

    return setup


def _config(**changes: Any):
    def setup(tmp: Path) -> Path:
        folder = _hf(tmp)
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    return setup


def _deep_json(tmp: Path) -> Path:
    folder = _hf(tmp)
    (folder / "config.json").write_text('{"vocab_size": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return folder


def _load(tmp: Path, folder: Path) -> Any:
    return bk.BertForSequenceClassification.from_pretrained(folder)


def _save_on_full_disk(tmp: Path, folder: Path) -> Any:
    model = bk.BertForSequenceClassification.from_pretrained(folder)
    full = OSError(errno.ENOSPC, "No space left on device")
    with mock.patch("bertkit.checkpoint.hf.save_file", side_effect=full):
        return model.save_pretrained(folder)


# ---------------------------------------------------------------------- Google TF folders
def _google(entries: dict[str, bytes], data: bytes = b"", header: bytes | None = None, compress: bytes | None = None):
    """A release folder whose index holds the given raw BundleEntryProtos (name -> bytes)."""

    def setup(tmp: Path) -> Path:
        folder = tmp / "google"
        folder.mkdir()
        shutil.copy(GOOGLE / "bert_config.json", folder)
        shutil.copy(GOOGLE / "vocab.txt", folder)
        items = [(b"", tf_write.header_proto() if header is None else header)]
        items += [(name.encode(), value) for name, value in sorted(entries.items())]
        blocks = tf_write.table([items], compress={0: compress} if compress is not None else None)
        (folder / "bert_model.ckpt.index").write_bytes(blocks)
        (folder / "bert_model.ckpt.data-00000-of-00001").write_bytes(data)
        return folder

    return setup


def _entry(shape: bytes | int | None = None, offset: bytes | int = 0, size: int = 4, shard_id: int = 0) -> bytes:
    """A BundleEntryProto for one float32, with any field replaced by a value of the wrong kind."""
    shape_field = tf_write.field(2, shape if shape is not None else tf_write.shape_proto((1,)))
    parts = [tf_write.field(1, 1), shape_field, tf_write.field(4, offset), tf_write.field(5, size)]
    if shard_id:
        parts.append(tf_write.field(3, shard_id))
    return b"".join(parts)


def _large_tensor_bit_flip(tmp: Path) -> Path:
    """A 1.3 MB embedding matrix (larger than the 1 MiB the reader once skipped) with one bit flipped."""
    folder = tmp / "google"
    folder.mkdir()
    config = json.loads((GOOGLE / "bert_config.json").read_text()) | {"vocab_size": 10_000}
    (folder / "bert_config.json").write_text(json.dumps(config))
    weights = np.random.default_rng(0).standard_normal((10_000, 32)).astype(np.float32)
    tf_write.write_tf_checkpoint(folder / "bert_model.ckpt", {EMBEDDINGS: weights})
    shard = folder / "bert_model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[900_000] ^= 0x04
    shard.write_bytes(bytes(data))
    return folder


def _snappy_bomb() -> bytes:
    """A snappy block that declares 10 bytes and expands to 1 MB (a 4-byte literal, then copies)."""
    copy_64 = bytes([(63 << 2) | 2]) + (4).to_bytes(2, "little")  # copy 64 bytes from 4 back
    return tf_write.varint(10) + bytes([3 << 2]) + b"abcd" + copy_64 * 16_384


def _load_google(tmp: Path, folder: Path) -> Any:
    return bk.BertModel.from_pretrained(folder)


def _convert_argv(tmp: Path, folder: Path) -> list[Any]:
    return ["convert", "--from", "google", folder, "--out", tmp / "out"]


# ---------------------------------------------------------------------- convert
def _user_out_folder(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my own notes\n")
    (out / "tokenizer.json").write_text('{"model": {"type": "WordPiece", "vocab": {"a": 0}}}')
    return GOOGLE


def _latin1_vocab(tmp: Path) -> Path:
    folder = tmp / "google"
    shutil.copytree(GOOGLE, folder)
    lines = (folder / "vocab.txt").read_bytes().split(b"\n")
    lines[4] = "caf\xe9".encode("latin-1")
    (folder / "vocab.txt").write_bytes(b"\n".join(lines))
    return folder


TF_INDEX = "TF index"
ROWS = [
    # 1: damaged safetensors
    *[
        Case(
            id=f"safetensors-{kind}",
            surface="model.safetensors",
            fault=fault,
            setup=_damaged_safetensors(kind),
            run=_load,
            match=r"model\.safetensors: corrupt or truncated",
        )
        for kind, fault in (
            ("truncated", "cut to half its length"),
            ("header", "16 bytes of 0xFF over the header"),
            ("empty", "zero bytes"),
        )
    ],
    # 3: sharded index
    Case(
        id="shard-name-parent",
        surface="model.safetensors.index.json",
        fault="a shard named ../x.safetensors",
        setup=_sharded({"classifier.weight": "../x.safetensors"}),
        run=_load,
        match=r"index\.json: shard name '\.\./x\.safetensors' points outside the folder",
    ),
    Case(
        id="shard-name-absolute",
        surface="model.safetensors.index.json",
        fault="a shard named /etc/passwd",
        setup=_sharded({"classifier.weight": "/etc/passwd"}),
        run=_load,
        match=r"points outside the folder",
    ),
    Case(
        id="shard-name-number",
        surface="model.safetensors.index.json",
        fault="a shard name given as the number 5",
        setup=_sharded({"classifier.weight": 5}),
        run=_load,
        match=r'index\.json: needs "weight_map": an object of weight name -> shard file name',
    ),
    Case(
        id="weight-map-list",
        surface="model.safetensors.index.json",
        fault="weight_map given as a list",
        setup=_sharded(["model-00001-of-00001.safetensors"]),
        run=_load,
        match=r'needs "weight_map"',
    ),
    Case(
        id="shard-missing",
        surface="model.safetensors.index.json",
        fault="the index names a shard that is not there",
        setup=_sharded({"classifier.weight": "model-00002-of-00002.safetensors"}),
        run=_load,
        match=r"model-00002-of-00002\.safetensors: missing",
    ),
    # 4, 5, 6: crafted TF index entries and data
    Case(
        id="tf-shape-as-varint",
        surface=TF_INDEX,
        fault="an entry whose shape is a number, not a TensorShapeProto",
        setup=_google({EMBEDDINGS: _entry(shape=7)}, data=b"\0" * 4),
        run=_load_google,
        match=r"bert_model\.ckpt\.index: .*the shape is a number where a message belongs",
    ),
    Case(
        id="tf-offset-as-bytes",
        surface=TF_INDEX,
        fault="an entry whose offset is a byte string",
        setup=_google({EMBEDDINGS: _entry(offset=b"\x01\x02")}, data=b"\0" * 4),
        run=_load_google,
        match=r"offset is a byte string where a number belongs",
    ),
    Case(
        id="tf-num-shards-as-bytes",
        surface=TF_INDEX,
        fault="a header whose num_shards is a byte string",
        setup=_google({EMBEDDINGS: _entry()}, data=b"\0" * 4, header=tf_write.field(1, b"\x02")),
        run=_load_google,
        match=r"num_shards is a byte string",
    ),
    Case(
        id="tf-overflowing-dims",
        surface=TF_INDEX,
        fault="shape [2**62, 4] with size 0",
        setup=_google({EMBEDDINGS: _entry(shape=tf_write.shape_proto((2**62, 4)), size=0)}),
        run=_load_google,
        match=r"0 bytes do not hold shape \[4611686018427387904, 4\]",
    ),
    Case(
        id="tf-negative-dims",
        surface=TF_INDEX,
        fault="shape (-2, -2)",
        setup=_google({EMBEDDINGS: _entry(shape=tf_write.shape_proto((-2, -2)))}, data=b"\0" * 4),
        run=_load_google,
        match=r"negative \(unknown\) dimension",
    ),
    Case(
        id="tf-65-dims",
        surface=TF_INDEX,
        fault="a shape of 65 dimensions of 1",
        setup=_google({EMBEDDINGS: _entry(shape=tf_write.shape_proto((1,) * 65))}, data=b"\0" * 4),
        run=_load_google,
        match=r"has 65 dimensions \(at most 64\)",
    ),
    Case(
        id="tf-shard-out-of-range",
        surface=TF_INDEX,
        fault="an entry in shard 3 of a one-shard checkpoint",
        setup=_google({EMBEDDINGS: _entry(shard_id=3)}, data=b"\0" * 4),
        run=_load_google,
        match=r"is in shard 3, but the checkpoint has 1",
    ),
    Case(
        id="tf-empty-data-shard",
        surface="TF data",
        fault="a zero-byte .data shard",
        setup=_google({EMBEDDINGS: _entry(shape=tf_write.shape_proto((60, 32)), size=60 * 32 * 4)}),
        run=_load_google,
        match=r"data-00000-of-00001: truncated: .* file has 0",
    ),
    # 7: a bit flip inside a tensor over 1 MiB
    Case(
        id="tf-large-tensor-bit-flip",
        surface="TF data",
        fault="one bit flipped inside a 1.3 MB tensor, verify on",
        setup=_large_tensor_bit_flip,
        run=_load_google,
        argv=_convert_argv,
        match=r"checksum mismatch for variable 'bert/embeddings/word_embeddings'",
    ),
    # 8: snappy expanding past its declared length
    Case(
        id="tf-snappy-bomb",
        surface=TF_INDEX,
        fault="a snappy block declaring 10 bytes that expands to 1 MB",
        setup=_google({EMBEDDINGS: _entry()}, data=b"\0" * 4, compress=_snappy_bomb()),
        run=_load_google,
        match=r"snappy block expands past its declared length of 10 bytes",
        cpu_seconds=0.5,
    ),
    # 9: config.json
    Case(
        id="config-id2label-key",
        surface="config.json",
        fault='id2label with the key "x"',
        setup=_config(id2label={"x": "A", "1": "B", "2": "C"}),
        run=_load,
        match=r"config\.json: id2label keys must be label ids .*'x'",
    ),
    Case(
        id="config-id2label-list",
        surface="config.json",
        fault="id2label given as a list",
        setup=_config(id2label=["neg", "pos", "neutral"]),
        run=_load,
        match=r"config\.json: id2label must be an object",
    ),
    Case(
        id="config-label2id-list",
        surface="config.json",
        fault="label2id given as a list (and no id2label)",
        setup=lambda tmp: _drop_id2label(_config(label2id=["neg", "pos"])(tmp)),
        run=_load,
        match=r"config\.json: label2id must be an object",
    ),
    Case(
        id="config-initializer-range-text",
        surface="config.json",
        fault='initializer_range: "x"',
        setup=_config(initializer_range="x"),
        run=_load,
        match=r"config\.json: BertConfig\.initializer_range must be a number",
    ),
    Case(
        id="config-vocab-10-12",
        surface="config.json",
        fault="vocab_size: 10**12",
        setup=_config(vocab_size=10**12),
        run=_load,
        match=r"vocab_size is 1,000,000,000,000, above bertkit's limit",
    ),
    Case(
        id="config-disagrees-with-weights",
        surface="config.json",
        fault="vocab_size 3,000,000, hidden_size 768 beside a 30 x 8 embedding: refused before allocating",
        setup=_config(vocab_size=3_000_000, hidden_size=768, num_attention_heads=12),
        run=_load,
        match=r"wrong shape for this model: .*word_embeddings\.weight \(checkpoint \[30, 8\] vs model \[3000000, 768",
    ),
    Case(
        id="config-nested-100k",
        surface="config.json",
        fault="JSON nested 100,000 deep",
        setup=_deep_json,
        run=_load,
        match=r"config\.json: JSON nested too deeply",
    ),
    # 22: save_pretrained on a full disk
    Case(
        id="save-pretrained-enospc",
        surface="save_pretrained",
        fault="ENOSPC while writing model.safetensors over a saved model",
        setup=_hf,
        run=_save_on_full_disk,
        match=r"model\.safetensors: cannot write \(No space left on device\); the previous file is unchanged",
        expected="one-line error; the saved model and no temporary file left",
    ),
    # 24: convert --out
    Case(
        id="convert-out-not-empty",
        surface="convert --out",
        fault="--out holds a user's notes and a foreign tokenizer.json",
        setup=_user_out_folder,
        argv=_convert_argv,
        match=r"--out .*out: the folder exists and is not empty.*--overwrite",
    ),
    Case(
        id="convert-vocab-not-utf8",
        surface="convert (vocab.txt)",
        fault="a Latin-1 word on line 5 of the release's vocab.txt",
        setup=_latin1_vocab,
        argv=_convert_argv,
        match=r"vocab\.txt:5: not UTF-8",
        expected="one-line error naming the line, before anything is written",
    ),
]


def _drop_id2label(folder: Path) -> Path:
    config = json.loads((folder / "config.json").read_text())
    config.pop("id2label")
    (folder / "config.json").write_text(json.dumps(config))
    return folder
