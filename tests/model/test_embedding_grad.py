"""The word embedding's recycled training gradient (bertkit/model/fast_paths.Embedding): bit for
bit nn.Embedding's gradient, its memory used again step after step, and never a gradient that
someone still holds (accumulation over micro-batches, a tied decoder, a kept reference)."""

from __future__ import annotations

import torch
from torch import nn

from bertkit import BertConfig, BertForMaskedLM
from bertkit.model.fast_paths import Embedding


def pair(vocab: int = 500, dim: int = 16, padding_idx: int | None = 0) -> tuple[nn.Embedding, Embedding]:
    torch.manual_seed(0)
    ref = nn.Embedding(vocab, dim, padding_idx=padding_idx)
    ours = Embedding(vocab, dim, padding_idx=padding_idx)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def batch(vocab: int = 500, dim: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, vocab, (8, 40))
    ids[:, -5:] = 0  # padding, and many repeats of one id
    return ids, torch.randn(8, 40, dim)


def test_gradient_equals_nn_embedding_and_reuses_its_memory():
    ref, ours = pair()
    pointers = set()
    for _ in range(4):
        ids, g = batch()
        ref.weight.grad = ours.weight.grad = None  # what zero_grad() does by default
        (ref(ids) * g).sum().backward()
        (ours(ids) * g).sum().backward()
        assert torch.equal(ours.weight.grad, ref.weight.grad)
        assert not ours.weight.grad[0].any()  # the padding row gets no gradient
        pointers.add(ours.weight.grad.data_ptr())
    assert len(pointers) == 1  # one buffer, written again each step


def test_accumulated_micro_batches_are_summed_not_overwritten():
    ref, ours = pair()
    for _ in range(3):
        ids, g = batch()
        (ref(ids) * g).sum().backward()
        (ours(ids) * g).sum().backward()
    assert torch.equal(ours.weight.grad, ref.weight.grad)


def test_a_gradient_still_held_is_never_overwritten():
    ref, ours = pair()
    ids, g = batch()
    (ours(ids) * g).sum().backward()
    held = ours.weight.grad
    expected = held.clone()
    ours.weight.grad = None
    ids, g = batch()
    (ours(ids) * g).sum().backward()
    assert torch.equal(held, expected)
    assert ours.weight.grad.data_ptr() != held.data_ptr()


def test_padding_free_and_optimizer_steps_match_nn_embedding():
    ref, ours = pair(padding_idx=None)
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-2, fused=True)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-2, fused=True)
    for _ in range(3):
        ids, g = batch()
        for model, opt in ((ref, opt_ref), (ours, opt_ours)):
            (model(ids) * g).sum().backward()
            opt.step()
            opt.zero_grad()
    assert torch.equal(ours.weight, ref.weight)


def test_tied_decoder_and_embedding_gradients_match_plain_torch():
    """MLM ties the decoder to the word embedding: both gradients land in one .grad."""
    config = BertConfig(vocab_size=80, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=48)
    torch.manual_seed(0)
    ours = BertForMaskedLM(config).train()
    plain = BertForMaskedLM(config).train()
    plain.load_state_dict(ours.state_dict())
    old = plain.bert.embeddings.word_embeddings
    plain.bert.embeddings.word_embeddings = nn.Embedding(80, 32, padding_idx=old.padding_idx)
    plain.bert.embeddings.word_embeddings.weight = old.weight
    assert plain.cls.predictions.decoder.weight is plain.bert.embeddings.word_embeddings.weight
    ids = torch.randint(1, 80, (4, 12))
    for model in (ours, plain):
        torch.manual_seed(1)  # the same dropout masks
        for _ in range(2):
            model.zero_grad()
            model(input_ids=ids, labels=ids).loss.backward()
    assert torch.equal(ours.bert.embeddings.word_embeddings.weight.grad, old.weight.grad)


def test_evaluation_and_no_grad_take_the_plain_lookup_and_free_the_buffer():
    ref, ours = pair()
    ids, g = batch()
    (ours(ids) * g).sum().backward()
    assert ours.__dict__.get("_buffers_kept")
    with torch.no_grad():
        assert torch.equal(ours(ids), ref(ids))
    ours.eval()
    assert torch.equal(ours(ids), ref(ids))
    assert "_buffers_kept" not in ours.__dict__
    assert repr(ours) == repr(ref) and list(ours.state_dict()) == ["weight"]
