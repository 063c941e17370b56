"""Every head against its transformers twin on the same random weights: logits, loss, gradients."""

from __future__ import annotations

import torch
from peers import peer

import bertkit.model as bk
from bertkit.checkpoint.hf import load_state_into

transformers = peer("transformers")

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    hidden_act="gelu",
)


def twins(name: str, **extra):
    """(transformers model, bertkit model) with identical weights, both in eval mode."""
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**{**TINY, **extra})
    hf = getattr(transformers, name)(hf_config).eval()
    # HF's init is BERT's small init; widen it so that mistakes cannot hide in near-zero outputs
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ours = getattr(bk, name)(bk.BertConfig(**{**TINY, **extra})).eval()
    report = load_state_into(ours, hf.state_dict())
    assert not report.missing and not report.unexpected and not report.mismatched
    return hf, ours


def batch(B=4, T=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for b, n in enumerate([T, T - 3, 5, T - 1][:B]):
        mask[b, n:] = 0
        ids[b, n:] = 0
    types = torch.zeros(B, T, dtype=torch.long)
    types[:, T // 2 :] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def hf_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def our_grads(model) -> dict[str, torch.Tensor]:
    """Gradients under Hugging Face's names (the fused qkv split back into query/key/value)."""
    out = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        if ".qkv." in name:
            for part, g in zip(("query", "key", "value"), p.grad.chunk(3)):
                out[name.replace("qkv", part)] = g
        else:
            out[name] = p.grad
    return out


def assert_grads_close(hf, ours):
    a, b = hf_grads(hf), our_grads(ours)
    a.pop("cls.predictions.decoder.weight", None)  # tied: same tensor as the word embeddings
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4, msg=name)


def run_pair(name, inputs, out_fields, extra_config=None, **labels):
    hf, ours = twins(name, **(extra_config or {}))
    h = hf(**inputs, **labels)
    o = ours(**inputs, **labels)
    for f in out_fields:
        assert (getattr(o, f) - getattr(h, f)).abs().max() <= 1e-5, f
    if labels:
        assert abs(o.loss.item() - h.loss.item()) <= 1e-5
        h.loss.backward()
        o.loss.backward()
        assert_grads_close(hf, ours)
    return hf, ours, h, o


def test_pretraining_head():
    inputs = batch()
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 2] = 7
    labels[0, 5] = 42
    run_pair(
        "BertForPreTraining",
        inputs,
        ["prediction_logits", "seq_relationship_logits"],
        labels=labels,
        next_sentence_label=torch.tensor([0, 1, 1, 0]),
    )


def test_masked_lm_head():
    inputs = batch()
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 3] = 11
    labels[1, 1] = 98
    run_pair("BertForMaskedLM", inputs, ["logits"], labels=labels)


def test_masked_positions_give_the_same_logits_and_loss_faster_path():
    inputs = batch()
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 3] = 11
    labels[2, 0] = 5
    hf, ours = twins("BertForMaskedLM")
    ref = hf(**inputs, labels=labels)
    masked = labels != -100
    for positions in (masked, "labels"):
        out = ours(**inputs, labels=labels, masked_positions=positions)
        assert out.logits.shape == (int(masked.sum()), 99)
        assert (out.logits - ref.logits[masked]).abs().max() <= 1e-5
        assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    # Google-style integer positions [B, K]
    positions = torch.tensor([[3, 0], [3, 1], [0, 3], [3, 0]])
    out = ours(**inputs, masked_positions=positions)
    expected = torch.gather(ref.logits, 1, positions[..., None].expand(-1, -1, 99))
    assert (out.logits - expected).abs().max() <= 1e-5
    # the pretraining head takes the same argument
    hf, ours = twins("BertForPreTraining")
    nsp = torch.tensor([0, 1, 1, 0])
    ref = hf(**inputs, labels=labels, next_sentence_label=nsp)
    out = ours(**inputs, labels=labels, next_sentence_label=nsp, masked_positions=masked)
    assert abs(out.loss.item() - ref.loss.item()) <= 1e-5
    assert (out.prediction_logits - ref.prediction_logits[masked]).abs().max() <= 1e-5
    assert abs((out.mlm_loss + out.nsp_loss).item() - ref.loss.item()) <= 1e-5


def test_next_sentence_head():
    run_pair("BertForNextSentencePrediction", batch(), ["logits"], labels=torch.tensor([1, 0, 0, 1]))


def test_sequence_classification_single_label():
    run_pair("BertForSequenceClassification", batch(), ["logits"], {"num_labels": 3}, labels=torch.tensor([0, 2, 1, 2]))


def test_sequence_classification_regression_when_one_label():
    _, _, _, out = run_pair(
        "BertForSequenceClassification",
        batch(),
        ["logits"],
        {"num_labels": 1},
        labels=torch.tensor([0.5, -1.0, 2.0, 0.0]),
    )
    assert out.logits.shape == (4, 1)


def test_sequence_classification_multi_label():
    labels = torch.tensor([[1.0, 0.0, 1.0], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    run_pair("BertForSequenceClassification", batch(), ["logits"], {"num_labels": 3}, labels=labels)


def test_token_classification():
    inputs = batch()
    labels = torch.randint(0, 5, inputs["input_ids"].shape)
    labels[inputs["attention_mask"] == 0] = -100
    labels[:, 0] = -100
    run_pair("BertForTokenClassification", inputs, ["logits"], {"num_labels": 5}, labels=labels)


def test_question_answering_including_positions_outside_the_window():
    run_pair(
        "BertForQuestionAnswering",
        batch(),
        ["start_logits", "end_logits"],
        start_positions=torch.tensor([1, 4, 0, 30]),
        end_positions=torch.tensor([2, 6, 0, 31]),
    )


def test_base_model_outputs_and_gradients():
    hf, ours = twins("BertModel")
    inputs = batch()
    h = hf(**inputs, output_hidden_states=True)
    o = ours(**inputs, output_hidden_states=True)
    assert len(o.hidden_states) == len(h.hidden_states) == 3
    for a, b in zip(o.hidden_states, h.hidden_states):
        assert (a - b).abs().max() <= 1e-5
    (h.last_hidden_state.square().mean() + h.pooler_output.sum()).backward()
    (o.last_hidden_state.square().mean() + o.pooler_output.sum()).backward()
    assert_grads_close(hf, ours)


def test_tanh_gelu_matches_transformers_gelu_new():
    hf, ours = twins("BertModel", hidden_act="gelu_new")
    inputs = batch()
    assert (ours(**inputs).last_hidden_state - hf(**inputs).last_hidden_state).abs().max() <= 1e-5
