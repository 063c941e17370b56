"""bertkit's CPU dropout: the rate, the scaling, reproducibility, the C masks equal to their
PyTorch reference bit for bit, and that the training paths it opens (fused dropout + residual,
masked attention in one matmul) compute the same network."""

import pytest
import torch

import bertkit.model.fast_paths as fast_paths
from bertkit.model import BertConfig, BertForTokenClassification, BertModel, native
from bertkit.model.fast_paths import Dropout, dropout_mask, hashed_bits


@pytest.fixture(params=["C", "PyTorch"])
def mask_path(request, monkeypatch):
    """Each mask test on both paths: the C kernels (where a compiler built them) and PyTorch's."""
    if request.param == "C":
        request.getfixturevalue("kernels")  # skips without a compiler, fails where one did not build them
    else:
        monkeypatch.setattr(native, "kernels", lambda: None)
    return request.param


def _splitmix64(seed: int, counter: int) -> int:
    """splitmix64's output for `counter`, in Python's unbounded ints: the reference of the reference."""
    z = (seed + counter * 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


def test_hashed_bits_are_splitmix64_sliced():
    for seed in (0, 12345, -(2**63), 2**63 - 1, -7):
        bits = hashed_bits(seed, 10).tolist()
        for i, got in enumerate(bits):
            piece = (_splitmix64(seed, i // 4 + 1) >> (16 * (i % 4))) & 0xFFFF
            assert got == piece - 65536 * (piece >= 32768), (seed, i)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_c_and_pytorch_masks_are_the_same_bits(dtype, monkeypatch, kernels):
    for shape in [(1,), (3,), (4,), (7, 5), (2, 12, 33, 33)]:  # whole and partial hashes
        torch.manual_seed(11)
        c = dropout_mask(torch.empty(shape, dtype=dtype), 0.1)
        with monkeypatch.context() as m:
            m.setattr(native, "kernels", lambda: None)
            torch.manual_seed(11)
            plain = dropout_mask(torch.empty(shape, dtype=dtype), 0.1)
        assert c.dtype == dtype and c.shape == shape
        assert torch.equal(c, plain), shape


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_mask_drops_p_and_scales_the_rest(p, mask_path):
    torch.manual_seed(0)
    m = dropout_mask(torch.empty(1000, 1000), p)
    dropped = (m == 0).float().mean().item()
    assert abs(dropped - p) < 0.002  # 1M draws: the standard error is < 0.0005
    kept = m[m != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)))
    assert abs(m.mean().item() - 1.0) < 0.005  # inverted dropout keeps the expectation


def test_mask_is_seeded_shaped_and_typed(mask_path):
    torch.manual_seed(3)
    a = dropout_mask(torch.empty(5, 7, 3), 0.1)
    torch.manual_seed(3)
    b = dropout_mask(torch.empty(5, 7, 3), 0.1)
    assert a.shape == (5, 7, 3) and torch.equal(a, b)
    assert dropout_mask(torch.empty(4, 4, dtype=torch.bfloat16), 0.1).dtype == torch.bfloat16
    torch.manual_seed(4)
    assert not torch.equal(a, dropout_mask(torch.empty(5, 7, 3), 0.1))  # another seed, another mask
    # the elements are independent: neighbours within one 64-bit hash are not correlated
    m = (dropout_mask(torch.empty(400_000), 0.5) == 0).float().view(-1, 4)
    both = (m[:, 0] * m[:, 1]).mean().item()
    assert abs(both - 0.25) < 0.01


def test_module_matches_nn_dropout_contract():
    d = Dropout(0.2)
    x = torch.randn(64, 32, requires_grad=True)
    d.eval()
    assert d(x) is x  # eval: identity, as nn.Dropout
    d.train()
    torch.manual_seed(1)
    y = d(x)
    y.sum().backward()
    # gradient is the mask itself: 0 where dropped, 1/(1-p) where kept
    assert torch.equal((y == 0), (x.grad == 0))
    assert torch.allclose(x.grad[x.grad != 0], torch.tensor(1 / 0.8))
    assert repr(d) == "Dropout(p=0.2, inplace=False)"


def _tiny(**kw):
    return BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **kw,
    )


def test_training_paths_equal_eval_when_nothing_is_dropped(monkeypatch):
    """With every mask forced to 1, a training forward (baddbmm-masked attention, addcmul
    residuals) must equal the eval forward (SDPA / Hugging Face's order) on a padded batch."""
    torch.manual_seed(0)
    model = BertForTokenClassification(_tiny(num_labels=3))
    ids = torch.randint(5, 99, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    monkeypatch.setattr(fast_paths, "dropout_mask", lambda like, p: torch.ones_like(like))
    model.train()
    got = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def test_training_dropout_rate_reaches_every_site(monkeypatch):
    """Embeddings, attention probabilities, both residual branches and the classifier draw masks."""
    calls = []
    real = fast_paths.dropout_mask

    def spy(like, p):
        calls.append(tuple(like.shape))
        return real(like, p)

    monkeypatch.setattr(fast_paths, "dropout_mask", spy)
    torch.manual_seed(0)
    model = BertForTokenClassification(_tiny(num_labels=3)).train()
    model(input_ids=torch.randint(5, 99, (2, 9)), attention_mask=torch.ones(2, 9, dtype=torch.long))
    # 1 embeddings + 2 layers x (attention probs + 2 residual branches) + 1 classifier
    assert len(calls) == 1 + 2 * 3 + 1
    assert (2, 4, 9, 9) in calls  # the attention probabilities [B, A, T, T]


def test_no_dropout_keeps_the_fused_attention_kernel(monkeypatch):
    """dropout 0 (the short-budget pretraining recipe) must not pay for the explicit path."""
    monkeypatch.setattr(fast_paths, "dropout_mask", lambda like, p: pytest.fail("no mask should be drawn"))
    model = BertModel(_tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).train()
    model(input_ids=torch.randint(5, 99, (2, 30)))


def test_skipping_padding_changes_nothing_a_head_reads():
    """skip_padding packs the real tokens through every position-wise layer: the real tokens'
    outputs, the pooled [CLS] and the gradients equal the padded computation's."""
    torch.manual_seed(0)
    model = BertModel(_tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    ids = torch.randint(5, 99, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 11:] = 0
    mask[2, 4:] = 0
    real = mask.bool()
    results = []
    for skip in (False, True):
        for cls_only in (False, True):
            model.zero_grad()
            out = model(input_ids=ids, attention_mask=mask, skip_padding=skip, cls_only=cls_only)
            if skip and not cls_only:
                assert out.last_hidden_state[~real].abs().max() == 0  # padded positions: zeros
            seen = out.last_hidden_state[:, 0] if cls_only else out.last_hidden_state[real]
            (seen.square().sum() + out.pooler_output.sum()).backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
            results.append((seen.detach(), out.pooler_output.detach(), grads))
    for a, b in ((results[0], results[2]), (results[1], results[3])):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def test_token_classifier_skips_padding_only_when_padding_is_unlabelled():
    torch.manual_seed(0)
    model = BertForTokenClassification(
        _tiny(num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ).train()
    ids = torch.randint(5, 99, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 6:] = 0
    labels = torch.randint(0, 3, (2, 12))
    labels[1, 6:] = -100
    skipped = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert skipped.logits[1, 6:].sub(model.classifier.bias).abs().max() < 1e-6  # zeros went through the classifier
    full = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)  # whole path
    torch.testing.assert_close(skipped.loss, full.loss, atol=1e-6, rtol=1e-5)
    labels[1, 8] = 2  # a labelled padded position: the loss must see its real logits
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    model.train()
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask, labels=labels).loss, expected)


def test_a_recorded_graph_keeps_torch_dropout(monkeypatch):
    """While tracing, the mask's seed would be frozen into the graph: PyTorch's own dropout runs."""
    monkeypatch.setattr(fast_paths, "tracing", lambda: True)
    monkeypatch.setattr(fast_paths, "dropout_mask", lambda like, p: pytest.fail("no bit mask while tracing"))
    d = Dropout(0.5).train()
    y = d(torch.ones(1000))
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 300 < int((y == 0).sum()) < 700
