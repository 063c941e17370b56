"""Google's TensorFlow release format, read without TensorFlow, checked against TF's own outputs.

The fixture (tests/fixtures/google_bert_tiny) was written by tools/make_google_fixture.py with
TensorFlow: a 2-layer BERT under Google's variable names, Adam slots and global_step included,
plus the outputs TensorFlow computed for three padded sentence pairs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from peers import peer

import bertkit.model as bk
from bertkit.checkpoint import leveldb, tf_bundle, tf_write
from bertkit.checkpoint.crc32c import crc32c, unmask_crc
from bertkit.checkpoint.google import google_to_hf_name
from bertkit.convert import convert_google_checkpoint
from bertkit.errors import InputFileError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "google_bert_tiny"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURE / "expected_outputs.npz", allow_pickle=False))


def tf_inputs(e):
    return dict(
        input_ids=torch.from_numpy(e["input_ids"]).long(),
        attention_mask=torch.from_numpy(e["input_mask"]),
        token_type_ids=torch.from_numpy(e["segment_ids"]).long(),
    )


def test_outputs_equal_tensorflow(expected):
    model, report = bk.BertForPreTraining.from_pretrained(FIXTURE, output_loading_info=True)
    assert not report.missing and not report.unexpected and not report.mismatched
    assert model.config.hidden_act == "gelu_tanh"  # Google's "gelu" is the tanh formula
    with torch.no_grad():
        out = model(**tf_inputs(expected), output_hidden_states=True, output_attentions=True)
        pooled = model.bert(**tf_inputs(expected)).pooler_output

    def close(a, b):
        # |a - b| <= atol + rtol * |b|: float32 sums are ordered differently by the AVX2 and the
        # AVX-512 kernels, so the error grows with the magnitude (MLM logits reach ~8).
        np.testing.assert_allclose(a.numpy(), b, rtol=2e-5, atol=1e-5)

    close(out.hidden_states[0], expected["embedding_output"])
    for i in range(2):
        close(out.hidden_states[i + 1], expected[f"layer_output_{i}"])
        close(out.attentions[i], expected[f"attention_probs_{i}"])
    close(pooled, expected["pooled_output"])
    close(out.prediction_logits, expected["mlm_logits"])
    close(out.seq_relationship_logits, expected["nsp_logits"])


def test_converted_folder_loads_in_transformers_with_the_same_outputs(tmp_path, expected):
    transformers = peer("transformers")
    convert_google_checkpoint(FIXTURE, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "vocab.txt"}
    hf = transformers.BertForPreTraining.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        out = hf(**tf_inputs(expected))
    # |a - b| <= atol + rtol * |b|, as in test_outputs_equal_tensorflow
    np.testing.assert_allclose(out.prediction_logits.numpy(), expected["mlm_logits"], rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(out.seq_relationship_logits.numpy(), expected["nsp_logits"], rtol=2e-5, atol=1e-5)


def test_reader_maps_names_transposes_kernels_and_skips_optimizer_state():
    ckpt = tf_bundle.TFCheckpoint(FIXTURE)
    names = ckpt.names()
    assert "global_step" in names and "bert/pooler/dense/kernel/adam_m" in names
    assert google_to_hf_name("global_step") is None
    assert google_to_hf_name("bert/encoder/layer_1/attention/self/value/kernel/adam_v") is None
    assert google_to_hf_name("bert/encoder/layer_1/attention/self/query/kernel") == (
        "bert.encoder.layer.1.attention.self.query.weight",
        True,
    )
    assert google_to_hf_name("bert/embeddings/LayerNorm/gamma") == ("bert.embeddings.LayerNorm.weight", False)
    assert google_to_hf_name("cls/seq_relationship/output_weights") == ("cls.seq_relationship.weight", False)
    model = bk.BertForPreTraining.from_pretrained(FIXTURE)
    state = model.state_dict()
    kernel = ckpt.read("bert/encoder/layer_0/attention/self/query/kernel")  # [in, out]
    assert torch.equal(state["bert.encoder.layer.0.attention.self.query.weight"], torch.from_numpy(kernel.T.copy()))
    assert torch.equal(
        state["cls.seq_relationship.weight"], torch.from_numpy(ckpt.read("cls/seq_relationship/output_weights"))
    )
    assert ckpt.shape("bert/embeddings/word_embeddings") == (60, 32)


def copy_fixture(tmp_path) -> Path:
    folder = tmp_path / "google"
    shutil.copytree(FIXTURE, folder)
    return folder


def test_corrupt_index_is_a_clear_error(tmp_path):
    folder = copy_fixture(tmp_path)
    index = folder / "bert_model.ckpt.index"
    data = bytearray(index.read_bytes())
    data[100] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="checksum mismatch"):
        tf_bundle.TFCheckpoint(folder)
    index.write_bytes(b"not a table at all" * 4)
    with pytest.raises(InputFileError, match="not a readable TensorFlow checkpoint index"):
        bk.BertModel.from_pretrained(folder)


def test_truncated_or_corrupt_data_is_a_clear_error(tmp_path):
    folder = copy_fixture(tmp_path)
    shard = folder / "bert_model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[tf_bundle.TFCheckpoint(folder).entries["bert/embeddings/word_embeddings"].offset + 10] ^= 0x55
    shard.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="checksum mismatch for variable"):
        bk.BertModel.from_pretrained(folder)
    shard.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(InputFileError, match="truncated"):
        bk.BertModel.from_pretrained(folder, verify=False)
    shard.unlink()
    with pytest.raises(InputFileError, match="missing data shard"):
        bk.BertModel.from_pretrained(folder)


def test_missing_bert_config_is_a_clear_error(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "bert_config.json").unlink()
    with pytest.raises(InputFileError, match="config.json"):
        bk.BertModel.from_pretrained(folder)


def test_wire_format_helpers():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert leveldb.read_varint(bytes([0xAC, 0x02]), 0) == (300, 2)
    # field 1 varint 150, field 2 bytes "hi", field 6 fixed32
    msg = bytes([0x08, 0x96, 0x01, 0x12, 0x02]) + b"hi" + bytes([0x35, 1, 0, 0, 0])
    assert leveldb.parse_proto(msg) == {1: [150], 2: [b"hi"], 6: [1]}
    masked = ((((0x12345678 >> 15) | (0x12345678 << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    assert unmask_crc(masked) == 0x12345678
    # snappy: literal "abc", then a copy of 6 bytes from distance 3 (overlapping its own output)
    assert leveldb.snappy_decompress(bytes([9, 0x08]) + b"abc" + bytes([0x09, 0x03])) == b"abcabcabc"


def _snappy_literal(contents: bytes) -> bytes:
    """Snappy: the length varint, then one literal element of up to 60 bytes."""
    assert len(contents) <= 60
    return tf_write.varint(len(contents)) + bytes([(len(contents) - 1) << 2]) + contents


@pytest.mark.parametrize("snappy", [False, True])
def test_table_reader_follows_several_blocks_and_shared_key_prefixes(snappy):
    blocks = [[(b"bert/a", b"1"), (b"bert/ab", b"2"), (b"bert/abc", b"3")], [(b"bert/b", b"4"), (b"cls/x", b"5")]]
    compress = {1: _snappy_literal(tf_write.block(blocks[1]))} if snappy else None
    got = list(leveldb.read_table(tf_write.table(blocks, compress)))
    assert got == [kv for block in blocks for kv in block]
