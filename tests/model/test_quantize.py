"""bertkit/model/quantize.py: the weight bits follow the CPU (8 with VNNI, 7 without, 7 for a portable
graph), the int8 product is exact integer arithmetic on every CPU, a layer over the error gate tries
other smoothing strengths before leaving int8, and the layers kept out of int8 run in bfloat16 only
where the CPU multiplies it natively."""

from __future__ import annotations

import copy

import pytest
import torch

from bertkit.hardware import cpu_flags, cpu_has_native
from bertkit.model import quantize
from bertkit.model.quantize import PORTABLE_QMAX, Bf16Linear, Int8Linear, float_layers, keep_float, weight_qmax


def test_weight_bits_follow_vnni():
    has_vnni = bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})
    assert weight_qmax() == (127 if has_vnni else PORTABLE_QMAX)
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    for qmax in (None, PORTABLE_QMAX):
        q, _ = Int8Linear(linear, qmax=qmax).weight_int8()
        assert int(q.abs().max()) == (qmax or weight_qmax())  # each row's largest weight lands on qmax


def test_int8_product_is_the_integer_product_scaled_back():
    """y = half/127 * s_w * (q Wq^T) + mid * (W 1) + b, with the int32 sum exact (no saturation)."""
    torch.manual_seed(1)
    linear = torch.nn.Linear(96, 40)
    layer = Int8Linear(linear)
    x = torch.randn(7, 96) * torch.linspace(0.1, 20, 7)[:, None]
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    mid, half = (hi + lo) / 2, ((hi - lo) / 2).clamp(min=1e-8)
    q = ((x - mid) * (127 / half)).round().to(torch.int64)
    wq, scale = layer.weight_int8()
    exact_int = q @ wq.to(torch.int64).t()  # what the int32 kernel must produce
    expected = (
        exact_int.double() * scale.double() * (half.double() / 127)
        + mid.double() * (wq.double() * scale.double()[:, None]).sum(1)
        + linear.bias.double()
    )
    torch.testing.assert_close(layer(x).double(), expected, atol=1e-4, rtol=1e-5)  # float32 rounding only
    rel = (layer(x) - linear(x)).norm(dim=-1) / linear(x).norm(dim=-1)
    assert rel.max() < 0.03


def test_kept_layers_are_bfloat16_only_where_native():
    linear = torch.nn.Linear(16, 8)
    kept = keep_float(linear)
    assert isinstance(kept, Bf16Linear) == cpu_has_native("bf16")
    x = torch.randn(3, 16)
    y = kept(x)
    assert y.dtype == torch.float32 and y.shape == (3, 8)


@pytest.mark.skipif(not cpu_has_native("bf16"), reason="bfloat16 layers only where the CPU multiplies bf16 natively")
def test_bf16_layer_is_close_to_float_and_listed_as_float():
    torch.manual_seed(2)
    linear = torch.nn.Linear(32, 16)
    x = torch.randn(5, 32)
    exact = linear(x).detach()
    model = torch.nn.Sequential(Bf16Linear(torch.nn.Linear(32, 16)))
    model[0].linear.load_state_dict({k: v.bfloat16() for k, v in linear.state_dict().items()})
    with torch.inference_mode():
        got = model(x)
    rel = (got - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert rel.max() < 0.02  # bfloat16 weights and inputs: 8 bits of mantissa
    assert float_layers(model) == ["0"]


def test_too_sensitive_layers_leave_int8(monkeypatch):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(24, 24), torch.nn.Linear(24, 24))
    batches = [{"input": torch.randn(8, 24)}]

    wrapped = quantize.quantize_int8(_Wrapped(model), calibration=batches, max_error=0.0)  # every layer too far
    assert float_layers(wrapped) == ["net.0", "net.1"]
    assert not any(isinstance(m, Int8Linear) for m in wrapped.modules())


class _Wrapped(torch.nn.Module):
    """A model taking `input=`, as calibration batches are dicts of model arguments."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, input):
        return self.net(input)


def test_a_layer_over_the_gate_tries_other_smoothing_strengths():
    """A Linear whose int8 error at the default alpha is over max_error gets the grid's best alpha
    when that one is under it, and stays float when no alpha is; with 7-bit weights it is not tried."""
    torch.manual_seed(4)
    x = torch.randn(64, 48) * torch.logspace(-1, 1.5, 48)  # input channels of very different ranges
    x[:, 5] *= 30  # an outlier channel, as BERT's
    batches = [{"input": x}]
    linear = torch.nn.Linear(48, 16)
    ranges = x.abs().amax(0)

    def errors(qmax: int) -> dict[float, float]:
        with torch.inference_mode():
            ref = linear(x)
            return {
                a: quantize.worst_error(
                    Int8Linear(linear, quantize.smoothing(ranges, linear.weight, a), qmax=qmax)(x), ref
                )
                for a in quantize.ALPHA_GRID
            }

    def quantized(max_error: float, qmax: int) -> torch.nn.Module:
        model = _Wrapped(copy.deepcopy(linear))
        return quantize.quantize_int8(model, calibration=batches, max_error=max_error, weight_qmax=qmax)

    for qmax in (127, PORTABLE_QMAX):
        found = errors(qmax)
        best = min(found, key=lambda a: found[a])
        assert found[best] < found[quantize.DEFAULT_ALPHA]  # the data makes the default not the best
        gate = (found[best] + found[quantize.DEFAULT_ALPHA]) / 2
        if qmax == PORTABLE_QMAX:
            assert float_layers(quantized(gate, qmax)) == ["net"]  # 7-bit weights: no other strength tried
            continue
        kept = quantized(gate, qmax).net
        assert isinstance(kept, Int8Linear)
        torch.testing.assert_close(kept.inv_smooth, 1.0 / quantize.smoothing(ranges, linear.weight, best))
        assert float_layers(quantized(found[best] / 2, qmax)) == ["net"]


@pytest.mark.parametrize("per_token", [True, False])
def test_no_rows_give_no_rows(per_token):
    """An empty batch (no tokens) has no range to quantize by: an empty output, not an amin() error."""
    layer = Int8Linear(torch.nn.Linear(12, 5), per_token=per_token).eval()
    with torch.inference_mode():
        assert layer(torch.randn(2, 0, 12)).shape == (2, 0, 5)
        assert layer(torch.randn(0, 12)).shape == (0, 5)
