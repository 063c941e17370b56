"""BertModel on its own: shapes, the two attention paths, state-dict names, bad input, train mode."""

from __future__ import annotations

import pytest
import torch

from bertkit import BertConfig, BertForMaskedLM, BertModel
from bertkit.errors import BertkitError

TINY = dict(
    vocab_size=50,
    hidden_size=24,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=40,
    type_vocab_size=2,
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = BertModel(BertConfig(**TINY)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m


def batch():
    ids = torch.tensor([[2, 5, 9, 11, 3, 0, 0], [2, 7, 7, 8, 9, 10, 3]])
    mask = (ids != 0).long()
    types = torch.tensor([[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1]])
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def test_output_shapes(model):
    out = model(**batch(), output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == (2, 7, 24)
    assert out.pooler_output.shape == (2, 24)
    assert len(out.hidden_states) == 4 and all(h.shape == (2, 7, 24) for h in out.hidden_states)
    assert len(out.attentions) == 3 and all(a.shape == (2, 4, 7, 7) for a in out.attentions)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    # attention rows are distributions that ignore padding
    probs = out.attentions[0]
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 7))
    assert probs[0, :, :, 5:].abs().max() == 0
    # Hugging Face style access by position and the tuple form
    assert out[0] is out.last_hidden_state and out["pooler_output"] is out.pooler_output
    as_tuple = model(**batch(), return_dict=False)
    assert len(as_tuple) == 2 and torch.allclose(as_tuple[0], out.last_hidden_state, atol=1e-5)


@pytest.mark.parametrize("T", [7, 30])  # 7: both explicit (short input); 30: the SDPA kernel vs explicit
def test_sdpa_and_explicit_paths_agree(model, T):
    ids = torch.randint(1, 50, (3, T), generator=torch.Generator().manual_seed(T))
    mask = torch.ones(3, T, dtype=torch.long)
    mask[1, T // 2 :] = 0
    fast = model(ids, mask)
    explicit = model(ids, mask, output_attentions=True)
    assert explicit.attentions is not None and fast.attentions is None
    assert (fast.last_hidden_state - explicit.last_hidden_state).abs().max() <= 1e-5
    assert (fast.pooler_output - explicit.pooler_output).abs().max() <= 1e-5


@pytest.mark.parametrize("T", [7, 30])
def test_cls_only_gives_the_same_pooled_output_and_gradients(model, T):
    """The classifier's shortcut (last layer on [CLS] alone) changes the work, not the result."""
    torch.manual_seed(1)
    ids = torch.randint(1, 50, (3, T))
    mask = torch.ones_like(ids)
    mask[1, T // 2 :] = 0
    pooled, grads = [], []
    for cls_only in (False, True):
        model.zero_grad()
        out = model(ids, mask, cls_only=cls_only)
        assert out.last_hidden_state.shape[1] == (1 if cls_only else T)
        out.pooler_output.square().sum().backward()
        pooled.append(out.pooler_output.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert (pooled[0] - pooled[1]).abs().max() <= 1e-5
    for full, fast in zip(*grads):
        torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-4)
    hidden = model(ids, mask, cls_only=True, output_hidden_states=True)  # asking for every layer keeps them whole
    assert hidden.last_hidden_state.shape[1] == T


def test_padding_does_not_change_real_tokens(model):
    b = batch()
    alone = model(input_ids=b["input_ids"][:1, :5], token_type_ids=b["token_type_ids"][:1, :5])
    padded = model(**b)
    assert (alone.last_hidden_state[0] - padded.last_hidden_state[0, :5]).abs().max() <= 1e-5


def test_state_dict_uses_separate_query_key_value_and_loads_back(model):
    state = model.state_dict()
    assert "encoder.layer.0.attention.self.query.weight" in state
    assert "encoder.layer.0.attention.self.value.bias" in state
    assert not any("qkv" in k for k in state)
    assert state["encoder.layer.2.attention.self.key.weight"].shape == (24, 24)
    fresh = BertModel(BertConfig(**TINY)).eval()
    fresh.load_state_dict(state)  # strict: every key matched
    assert torch.equal(fresh(**batch()).last_hidden_state, model(**batch()).last_hidden_state)


def test_query_rows_are_the_first_third_of_the_fused_projection(model):
    fused = model.encoder.layer[1].attention.self.qkv.weight
    state = model.state_dict()
    assert torch.equal(state["encoder.layer.1.attention.self.query.weight"], fused[:24])
    assert torch.equal(state["encoder.layer.1.attention.self.value.weight"], fused[48:])


def test_mlm_decoder_is_tied_to_word_embeddings():
    m = BertForMaskedLM(BertConfig(**TINY))
    assert m.cls.predictions.decoder.weight is m.bert.embeddings.word_embeddings.weight
    assert m.num_parameters() == sum(p.numel() for p in m.parameters())  # counted once


@pytest.mark.parametrize(
    "ids,message",
    [
        (torch.tensor([[2, 50, 3]]), "id 50, outside the vocabulary of 50"),
        (torch.tensor([[2, -1, 3]]), "id -1, outside the vocabulary"),
        (torch.ones(1, 41, dtype=torch.long), "sequence length 41 exceeds max_position_embeddings 40"),
        (torch.ones(3, dtype=torch.long), "shape \\[batch, seq\\]"),
        (torch.ones(1, 3), "integer tensor"),
    ],
)
def test_bad_input_ids_are_clear_errors(model, ids, message):
    with pytest.raises(BertkitError, match=message):
        model(ids)


def test_bad_side_inputs_are_clear_errors(model):
    ids = torch.tensor([[2, 5, 3]])
    with pytest.raises(BertkitError, match=r"token_type_ids must lie in \[0, 2\)"):
        model(ids, token_type_ids=torch.tensor([[0, 2, 0]]))
    with pytest.raises(BertkitError, match="attention_mask shape"):
        model(ids, attention_mask=torch.ones(1, 4))
    with pytest.raises(BertkitError, match="exactly one of input_ids or inputs_embeds"):
        model()


def test_inputs_embeds_and_position_ids(model):
    b = batch()
    embeds = model.embeddings.word_embeddings(b["input_ids"])
    a = model(inputs_embeds=embeds, attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"])
    positions = torch.arange(7).expand(2, 7)
    c = model(**b, position_ids=positions)
    assert torch.allclose(a.last_hidden_state, model(**b).last_hidden_state, atol=1e-6)
    assert torch.allclose(c.last_hidden_state, model(**b).last_hidden_state, atol=1e-6)


def test_dropout_only_in_train_mode(model):
    b = batch()
    model.train()
    torch.manual_seed(1)
    a = model(**b).last_hidden_state
    torch.manual_seed(2)
    c = model(**b).last_hidden_state
    assert (a - c).abs().max() > 1e-3
    model.eval()
    assert torch.equal(model(**b).last_hidden_state, model(**b).last_hidden_state)


def test_gradient_checkpointing_gives_the_same_gradients(model):
    b = batch()
    model.train()
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            model.gradient_checkpointing_enable()
        torch.manual_seed(3)
        model(**b).last_hidden_state.square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    model.gradient_checkpointing_disable()
    torch.testing.assert_close(grads[0], grads[1])


def test_gelu_variants_differ_and_tanh_matches_formula():
    x = torch.linspace(-4, 4, 101)
    from bertkit.model.bert import activation

    seed_formula = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    torch.testing.assert_close(activation("gelu_tanh")(x), seed_formula)
    assert (activation("gelu")(x) - seed_formula).abs().max() > 1e-5
