"""The packaged all-MiniLM-L6-v2 against transformers' BertModel on 500 real texts, in padded batches.

440 SST-2 validation sentences and 60 book paragraphs (truncated to 96 tokens), batches of 32 in
file order, so rows carry real padding. Every hidden state, the pooled output and the attention
probabilities must agree to 1e-5; so must mean-pooled, normalised sentence vectors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from peers import peer

import bertkit
from bertkit import BertModel

transformers = peer("transformers")

pytestmark = pytest.mark.slow
TOL = 1e-5
MAX_LEN = 96


@pytest.fixture(scope="module")
def texts(shared_data):
    lines = shared_data("sst2", "validation.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines[:440]]
    paragraphs = []
    for book in sorted(shared_data("corpus", "books").glob("*.txt"))[:6]:
        chunks = [" ".join(p.split()) for p in book.read_text(encoding="utf-8").split("\n\n")]
        paragraphs += [p for p in chunks if len(p) > 300][20:30]
    assert len(paragraphs) == 60
    return sentences + paragraphs


@pytest.fixture(scope="module")
def batches(texts, minilm_dir):
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    return [
        tok(texts[i : i + 32], padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        for i in range(0, len(texts), 32)
    ]


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def test_explicit_attention_path_matches_transformers_eager(minilm_dir, batches):
    """output_attentions=True takes the explicit softmax(QK^T/sqrt(d) + mask) path."""
    ours = BertModel.from_pretrained(minilm_dir)
    eager = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    worst = {"hidden_states": 0.0, "pooler_output": 0.0, "attentions": 0.0}
    n = 0
    with torch.inference_mode():
        for b in batches:
            n += len(b["input_ids"])
            o = ours(**b, output_hidden_states=True, output_attentions=True)
            h = eager(**b, output_hidden_states=True, output_attentions=True)
            assert len(o.hidden_states) == len(h.hidden_states) == 7 and len(o.attentions) == 6
            worst["hidden_states"] = max(
                worst["hidden_states"], *(max_diff(x, y) for x, y in zip(o.hidden_states, h.hidden_states))
            )
            worst["attentions"] = max(
                worst["attentions"], *(max_diff(x, y) for x, y in zip(o.attentions, h.attentions))
            )
            worst["pooler_output"] = max(worst["pooler_output"], max_diff(o.pooler_output, h.pooler_output))
    assert n >= 500
    assert all(v <= TOL for v in worst.values()), worst
    assert any((b["attention_mask"] == 0).any() for b in batches)  # the rows really were padded


def test_sdpa_path_and_mean_pooled_embeddings_match_transformers(minilm_dir, texts, batches):
    ours = BertModel.from_pretrained(minilm_dir)
    sdpa = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="sdpa").eval()
    worst = {"hidden_states": 0.0, "pooler_output": 0.0}
    reference = []
    with torch.inference_mode():
        for b in batches:
            o = ours(**b, output_hidden_states=True)
            h = sdpa(**b, output_hidden_states=True)
            worst["hidden_states"] = max(
                worst["hidden_states"], *(max_diff(x, y) for x, y in zip(o.hidden_states, h.hidden_states))
            )
            worst["pooler_output"] = max(worst["pooler_output"], max_diff(o.pooler_output, h.pooler_output))
            m = b["attention_mask"].unsqueeze(-1).float()
            pooled = (h.last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)  # sentence-transformers' pooling
            reference.append(F.normalize(pooled, dim=-1))
    assert all(v <= TOL for v in worst.values()), worst
    reference = torch.cat(reference)
    vectors = bertkit.embed(
        texts, model=ours, tokenizer=minilm_dir, pooling="mean", normalize=True, max_seq_len=MAX_LEN
    )
    assert vectors.shape == reference.shape == (500, 384)
    assert max_diff(vectors, reference) <= TOL
