"""bertkit/model/native.py and kernels.c: the C passes around the int8 matmul give the int8
codes of Int8Linear's PyTorch reference exactly and its outputs to float32 rounding, fold the
activations and the residual add correctly, keep NaN rows NaN; the C attention equals PyTorch's per
sequence and runs only where it applies; the library builds once into the cache, and leaves PyTorch
in charge (with one log line) where no compiler works."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform

import pytest
import torch
import torch.nn.functional as F

from bertkit.hardware import cpu_flags
from bertkit.model import BertConfig, BertModel, fast_paths, native
from bertkit.model import bert as bert_module
from bertkit.model.quantize import Int8Linear


def _layer(n_in: int, n_out: int, smooth: bool, seed: int) -> Int8Linear:
    torch.manual_seed(seed)
    factors = torch.rand(n_in) * 3 + 0.2 if smooth else None
    return Int8Linear(torch.nn.Linear(n_in, n_out), factors)


def _rows(n: int, width: int, seed: int) -> torch.Tensor:
    """Rows of very different ranges, an outlier channel, and a constant row (zero range)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, width, generator=g) * torch.logspace(-3, 2, n)[:, None]
    x[:, width // 3] *= 40  # BERT's outlier channel
    x[0] = 0.25  # hi == lo: the half-range floor
    return x


def test_kernels_build_on_a_machine_with_a_compiler(has_cc):
    assert (native.kernels() is not None) == has_cc


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("n_in", [1, 37, 384, 1536])
def test_codes_equal_the_reference_bit_for_bit(kernels, n_in, smooth):
    layer = _layer(n_in, 24, smooth, seed=n_in)
    x = _rows(9, n_in, seed=n_in + 1)
    q, mid, half = kernels.quantize_rows(x, layer.inv_smooth)
    ref_q, ref_mid, ref_half = layer.reference_codes(x)
    assert torch.equal(mid, ref_mid) and torch.equal(half, ref_half)
    assert torch.equal(q, ref_q)
    if n_in > 1:  # a row's extremes land on -127 and 127 (one column: every row is its own mid)
        assert int(q.abs().max()) == 127


def _exact(layer: Int8Linear, x: torch.Tensor) -> torch.Tensor:
    """The way back in float64 from the (shared, exact) int8 codes and int32 products."""
    q, mid, half = layer.reference_codes(x)
    acc = torch._int_mm(q, layer.qweight_t).double()
    row_sums, bias = layer.row_sums_and_bias.double()
    return acc * layer.w_scale.double() * (half.double() / 127) + mid.double() * row_sums + bias


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("shape", [(384, 1152), (384, 1536), (1536, 384), (5, 3)])
def test_projection_is_as_accurate_as_the_reference(kernels, shape, smooth):
    """Both ways back round float32 differently (the kernel's multiply-adds are fused, the
    reference's addmm is BLAS's): each is held to its distance from the float64 value."""
    layer = _layer(*shape, smooth=smooth, seed=sum(shape))
    x = _rows(33, shape[0], seed=7)
    exact = _exact(layer, x)
    ref_error = (layer.reference(x).double() - exact).abs().max()
    got = layer.fused(x)
    assert (got.double() - exact).abs().max() <= 2 * ref_error + 1e-7 * exact.abs().max()
    assert torch.equal(layer(x), got)  # forward takes the kernels here


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "relu"])
def test_activation_and_residual_fold_into_the_way_back(kernels, act):
    layer = _layer(64, 48, smooth=True, seed=3)
    x, residual = _rows(20, 64, seed=4), torch.randn(20, 48) * 5
    exact = _exact(layer, x)
    pre_error = 2 * (layer.reference(x).double() - exact).abs().max()  # the pre-activation's rounding
    expected = {
        "gelu": F.gelu(exact),
        "gelu_tanh": F.gelu(exact, approximate="tanh"),
        "relu": F.relu(exact),
    }[act]
    got = layer.fused(x, act=act).double()
    # GELU's slope is at most 1.13; erf by Abramowitz & Stegun 7.1.26 is within 1.5e-7
    assert ((got - expected).abs() <= 1.2 * pre_error + 1e-6 * (1 + exact.abs())).all()
    added = layer.fused(x.view(4, 5, 64), residual=residual.view(4, 5, 48))
    assert added.shape == (4, 5, 48)
    assert ((added.view(20, 48).double() - (exact + residual.double())).abs() <= pre_error + 1e-6).all()
    assert layer.fused(x, act="swish") is None  # not a kernel's activation: the caller runs it apart
    assert layer.fused(x, residual=torch.zeros(3, 48)) is None  # residual of another shape


def test_nan_row_stays_nan_and_leaves_the_others(kernels):
    layer = _layer(32, 16, smooth=True, seed=5)
    x = _rows(4, 32, seed=6)
    x[2, 7] = math.nan
    got = layer.fused(x)
    assert got[2].isnan().all()
    keep = [0, 1, 3]
    torch.testing.assert_close(got[keep], layer.reference(x[keep]), atol=1e-4, rtol=1e-5)


def test_model_fuses_gelu_and_add_only_in_the_inference_loop(kernels):
    """Inside fast_inference() the feed-forward's GELU and AddNorm's residual add run in the kernels;
    outside it (int8 calibration hooks), the projection's output is the plain one."""
    layer = _layer(32, 16, smooth=False, seed=8)
    x = _rows(6, 32, seed=9)
    with torch.inference_mode():
        assert fast_paths.linear_act(layer, x, "gelu") is None
        with fast_paths.fast_inference():
            torch.testing.assert_close(fast_paths.linear_act(layer, x, "gelu"), F.gelu(layer.reference(x)))
            torch.testing.assert_close(fast_paths.linear_add(layer, x, x[:, :16]), layer.reference(x) + x[:, :16])


def test_builds_once_into_the_cache(tmp_path, monkeypatch, has_cc):
    if not has_cc:
        pytest.skip("no C compiler here")
    calls = []
    real_run = native.subprocess.run
    monkeypatch.setattr(native.subprocess, "run", lambda cmd, **kw: calls.append(cmd[0:2]) or real_run(cmd, **kw))
    assert native.load(tmp_path) is not None
    built = list(tmp_path.glob("kernels-*.so"))
    compiles = [c for c in calls if c[1] != "--version"]
    assert len(built) == 1 and len(compiles) == 1
    assert native.load(tmp_path) is not None  # the second process finds it
    assert len([c for c in calls if c[1] != "--version"]) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_without_a_working_compiler_pytorch_runs_and_says_so(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="bertkit")
    monkeypatch.setenv("CC", "false")  # a compiler that fails every build
    assert native.load(tmp_path) is None
    assert native.FALLBACK in caplog.text
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert native.load(tmp_path) is None
    assert "no C compiler ('no-such-compiler-here') found" in caplog.text
    monkeypatch.setenv("BERTKIT_NATIVE", "0")
    assert native.load(tmp_path) is None
    assert "BERTKIT_NATIVE=0" in caplog.text
    assert not list(tmp_path.glob("*.so"))


def test_reference_runs_where_the_kernels_do_not(monkeypatch):
    """per_token=False and a traced graph take the PyTorch steps; so does a machine without kernels."""
    layer = _layer(16, 8, smooth=False, seed=10)
    x = _rows(5, 16, seed=11)
    monkeypatch.setattr(native, "kernels", lambda: None)
    assert layer._kernels(x) is None
    assert layer.fused(x, act="gelu") is None
    torch.testing.assert_close(layer(x), layer.reference(x))


# ---------------------------------------------------------------------- attention
def _sdpa_per_sequence(qkv: torch.Tensor, lengths: list[int], heads: int) -> torch.Tensor:
    """The reference: PyTorch's attention on each sequence alone, in float64, heads merged."""
    H = qkv.shape[1] // 3
    out, first = [], 0
    for n in lengths:
        q, k, v = qkv[first : first + n].double().view(n, 3, heads, H // heads).permute(1, 2, 0, 3)
        out.append(F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, H))
        first += n
    return torch.cat(out)


@pytest.mark.parametrize(
    "lengths, heads, head_size",
    [([1], 1, 16), ([3, 1, 16, 17], 2, 32), ([13, 5, 40], 12, 32), ([130, 7], 4, 64), ([33] * 6, 3, 48)],
)
def test_attention_equals_pytorch_per_sequence(kernels, lengths, heads, head_size):
    """Every token sees its own sequence only, whatever the lengths around it (one token, exactly one
    vector of queries, one past it, several blocks); scores of magnitude ~30 as BERT's."""
    g = torch.Generator().manual_seed(sum(lengths) + heads)
    qkv = torch.randn(sum(lengths), 3 * heads * head_size, generator=g) * 2.5
    starts = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    got = kernels.attention(qkv, starts, heads)
    expected = _sdpa_per_sequence(qkv, lengths, heads)
    assert got.shape == expected.shape
    # float32 rounding of a weighted mean of values of magnitude ~2.5: 1e-5 absolute
    assert (got.double() - expected).abs().max() <= 1e-5 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("avx2", [True, False], ids=["8 lanes (AVX2)", "4 lanes (the fallback build)"])
def test_attention_in_narrower_builds(kernels, tmp_path, avx2):
    """The vector width follows the build: an AVX2 machine's library (8 floats) and the fallback
    build without -march=native (4) give the same attention; only 8 or more is used
    (c_attention_applies)."""
    if platform.machine() not in ("x86_64", "AMD64") or (avx2 and "avx2" not in cpu_flags()):
        pytest.skip("these builds are x86's; the AVX2 one needs an AVX2 CPU to run")
    (flags, libs), fallback = native.BUILDS
    flags, libs = ([f for f in flags if f != "-march=native"] + ["-mavx2", "-mfma"], libs) if avx2 else fallback
    built = native.Kernels(ctypes.CDLL(str(native._built(os.environ.get("CC") or "cc", flags, libs, tmp_path))))
    assert built.attention_lanes == (8 if avx2 else 4)
    lengths, heads = [13, 1, 40], 12
    qkv = torch.randn(sum(lengths), 3 * heads * 32, generator=torch.Generator().manual_seed(3))
    starts = torch.tensor([0, 13, 14, 54])
    expected = _sdpa_per_sequence(qkv, lengths, heads)
    assert (built.attention(qkv, starts, heads).double() - expected).abs().max() <= 1e-5


def test_attention_nan_stays_in_its_sequence(kernels):
    qkv = torch.randn(9, 3 * 32)
    qkv[4, 40] = math.nan  # a key of the second sequence (rows 3..8)
    got = kernels.attention(qkv, torch.tensor([0, 3, 9]), 2)
    assert got[3:, :16].isnan().all() and not got[:3].isnan().any()
    torch.testing.assert_close(got[:3], _sdpa_per_sequence(qkv[:3], [3], 2).float(), atol=1e-6, rtol=1e-5)


def _mini_bert(head_size: int = 16) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=2 * head_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertModel(config).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 50, (3, 11), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    mask[2, 9:] = 0
    return ids, mask


def test_model_attends_in_c_on_one_thread_inside_fast_inference(kernels, monkeypatch):
    """BertModel takes the C attention in bertkit's batching loop (one thread, no grad, packed or
    unpadded) and gives PyTorch's outputs; outside it, or where PyTorch's path is needed, it does not."""
    calls = []
    real = fast_paths.c_attention
    monkeypatch.setattr(bert_module, "c_attention", lambda *a: calls.append(1) or real(*a))
    model, (ids, mask) = _mini_bert(), _batch()
    threads = torch.get_num_threads()
    with torch.inference_mode():
        expected = model(ids, mask).last_hidden_state * mask[..., None]
        torch.set_num_threads(1)
        try:
            with fast_paths.fast_inference():
                packed = model(ids, mask, skip_padding=True).last_hidden_state
                assert len(calls) == 2  # both layers
                whole = model(ids[1:2], mask[1:2]).last_hidden_state  # no padding: no mask, no packing
                assert len(calls) == 4
                model(ids, mask)  # padded and not packed: the mask needs PyTorch's path
                model(ids, mask, skip_padding=True, output_attentions=True)
                assert len(calls) == 4
        finally:
            torch.set_num_threads(threads)
        torch.testing.assert_close(packed, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(whole, expected[1:2], atol=1e-5, rtol=1e-5)
        if threads > 1:
            with fast_paths.fast_inference():
                model(ids, mask, skip_padding=True)  # several intra-op threads: PyTorch's parallel kernels
            assert len(calls) == 4
        model(ids, mask, skip_padding=True)  # outside fast_inference()
    with fast_paths.fast_inference():
        model(ids, mask, skip_padding=True)  # autograd on
    assert len(calls) == 4


def test_model_keeps_pytorch_attention_for_heads_of_other_sizes(kernels, monkeypatch):
    calls = []
    monkeypatch.setattr(bert_module, "c_attention", lambda *a: calls.append(1))
    model, (ids, mask) = _mini_bert(head_size=24), _batch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode(), fast_paths.fast_inference():
            model(ids, mask, skip_padding=True)
    finally:
        torch.set_num_threads(threads)
    assert not calls


def test_narrow_builds_leave_attention_to_pytorch(kernels, monkeypatch):
    """A library of 4-float vectors (measured slower than PyTorch beyond ~32 tokens) is not used."""
    narrow = native.Kernels(kernels.lib)
    narrow.attention_lanes = 4
    monkeypatch.setattr(native, "kernels", lambda: narrow)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode(), fast_paths.fast_inference():
            x = torch.randn(5, 32)
            assert not fast_paths.c_attention_applies(x, 16, training=False)
            narrow.attention_lanes = 8
            assert fast_paths.c_attention_applies(x, 16, training=False)
    finally:
        torch.set_num_threads(threads)
