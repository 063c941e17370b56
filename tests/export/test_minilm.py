"""all-MiniLM-L6-v2 exported: the graph agrees with bertkit float32 on real sentences (<= 1e-4 on
hidden states and sentence vectors, plain and optimized), and `--int8` keeps every one of 500 SST-2
sentences at cosine >= 0.99 to float32."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import bertkit
from bertkit import BertModel, Tokenizer
from bertkit.export import OnnxModel, export_onnx

pytestmark = pytest.mark.slow
TOL = 1e-4


@pytest.fixture(scope="module")
def sentences(shared_data):
    lines = shared_data("sst2", "validation.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:500]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, minilm_dir, onnx_ready, shared_data):
    root = tmp_path_factory.mktemp("minilm")
    export_onnx(minilm_dir, root / "plain")
    # calibrated on 64 training sentences (the default, 256 paragraphs of Python's docs, takes
    # minutes on 2 cores); checked below on 500 validation sentences it never saw
    lines = shared_data("sst2", "train.tsv").read_text(encoding="utf-8").splitlines()[1:65]
    export_onnx(minilm_dir, root / "int8", optimize=True, int8=True, calibration=[x.split("\t")[0] for x in lines])
    return root


def test_hidden_states_on_padded_real_batches(folders, minilm_dir, sentences):
    model, tok = BertModel.from_pretrained(minilm_dir).eval(), Tokenizer.from_pretrained(minilm_dir)
    runner = OnnxModel(folders / "plain")
    worst = 0.0
    for start in range(0, 96, 32):
        batch = tok(sentences[start : start + 32], padding=True, return_tensors="pt")
        with torch.inference_mode():
            want = model(**batch)
        got = runner(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        real = batch["attention_mask"].bool()
        worst = max(worst, (got.last_hidden_state[real] - want.last_hidden_state[real]).abs().max().item())
        worst = max(worst, (got.pooler_output - want.pooler_output).abs().max().item())
        assert (~real).any()  # the batch really is padded
    assert worst <= TOL, worst


def test_embed_backends_agree_on_real_sentences(folders, minilm_dir, sentences):
    expected = bertkit.embed(sentences[:200], model=minilm_dir)
    got = bertkit.embed(sentences[:200], model=folders / "plain", backend="onnx")
    assert (got - expected).abs().max() <= TOL


def test_int8_keeps_cosine_on_500_sst2_sentences(folders, minilm_dir, sentences):
    info = json.loads((folders / "int8" / "export.json").read_text())
    assert info["int8"] in ("onnxruntime", "bertkit")
    assert info["int8_worst_cosine"][info["int8"]] >= 0.99  # on the calibration text
    assert info["optimized"] is True and info["fusions"]
    reference = bertkit.embed(sentences, model=minilm_dir)
    quantized = bertkit.embed(sentences, model=folders / "int8", backend="onnx")
    cosine = F.cosine_similarity(quantized, reference, dim=-1)
    assert len(sentences) == 500
    assert cosine.min() >= 0.99, f"worst {cosine.min():.4f}, mean {cosine.mean():.4f}"
    assert (quantized - reference).abs().max() > 1e-4  # it really is a different (int8) computation
