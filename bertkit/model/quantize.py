"""Int8 inference on CPU that keeps sentence embeddings within cosine 0.99 of float32.

`torch.ao.quantization.quantize_dynamic` with its defaults drops MiniLM's mean-pooled embeddings
to cosine ~0.93 on average (0.77 for the worst sentence). Measured on 2,000 SST-2 sentences
(mean / worst cosine to float32), each step below is needed:

1. one weight scale per matrix: a few large rows set the scale and the rest lose their bits
   -> one scale per output row (per-channel weights);
2. x86 `reduce_range`: activations get only 7 bits -> use 8 (`reduce_range=False`). On CPUs
   without AVX-512 VNNI, fbgemm multiplies uint8 x int8 pairs with `vpmaddubsw`, whose int16 sum
   saturates for 8-bit activations x 8-bit weights (measured: twice the ideal error); weights
   are therefore kept to 7 bits (|q| <= 63), which never saturates (255 * 63 * 2 < 32767);
3. one activation scale per call: an outlier token sets it for the whole batch -> each row is
   mapped onto [-1, 1] before the kernel (its own 8-bit grid per token) and mapped back after;
4. BERT's outlier channels (large LayerNorm gains, GELU tails) -> SmoothQuant: divide input
   channel j by s_j and multiply weight column j by s_j (the product is unchanged),
   s_j = amax(x_j)^a / amax(W[:, j])^(1-a), a = 0.5, amax(x_j) measured on real calibration text;
5. the most sensitive layers stay float: after quantizing, a Linear whose output on the
   calibration text is off by more than 10% (relative L2 per token; in MiniLM only the first
   feed-forward output projection) keeps its float32 weights.
Result for MiniLM-L6 (bench/infer.py): see docs/model.md.

Everything that is not a big matmul (embeddings, LayerNorm, softmax, GELU, attention's own
products) stays float32. The int8 matmuls are fbgemm's dynamic kernels (`quantized::linear_dynamic`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from bertkit.errors import BertkitError

DEFAULT_ALPHA = 0.5
WEIGHT_QMAX = 63  # 7-bit weights: see point 2 above
DEFAULT_MAX_ERROR = 0.1


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (one scale per output row) and x quantized per token to 8 bits."""

    inv_smooth: torch.Tensor | None  # a buffer: 1 / the SmoothQuant factors, or None

    def __init__(self, linear: nn.Linear, smooth: torch.Tensor | None = None, per_token: bool = True):
        super().__init__()
        self.per_token = per_token
        weight = linear.weight.detach().float()
        if smooth is not None:
            weight = weight * smooth[None, :]  # [out, in] * [1, in]
        self.register_buffer("inv_smooth", None if smooth is None else (1.0 / smooth).float())
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / WEIGHT_QMAX  # [out]
        with warnings.catch_warnings():  # deprecated in torch 2.13 (pinned), still fbgemm's input format
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(
                weight, scale.double(), torch.zeros_like(scale, dtype=torch.long), axis=0, dtype=torch.qint8
            )
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
        # per token, the kernel runs without bias: it is added after the rows are mapped back
        # [2, out]: W @ ones (what a per-row shift of x adds to the output) and the bias
        self.register_buffer("row_sums_and_bias", torch.stack([qweight.dequantize().sum(1), bias]))
        self._packed = torch.ops.quantized.linear_prepack(qweight, None if per_token else bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inv_smooth is not None:
            x = x * self.inv_smooth
        if not self.per_token:
            return torch.ops.quantized.linear_dynamic(x, self._packed, False)  # reduce_range=False: 8-bit activations
        # fbgemm quantizes its whole input with one (scale, zero point); mapping each row onto
        # [-1, 1] first gives every token its own 8-bit grid
        # (amax and amin apart: torch.aminmax over the last dim is ~10x slower; in-place steps
        # because fresh [tokens, features] buffers cost page faults in every call)
        lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)  # [..., 1]
        mid, half = (hi + lo) * 0.5, ((hi - lo) * 0.5).clamp_(min=1e-8)
        z = x - mid if self.inv_smooth is None else x.sub_(mid)  # x is our own copy once smoothed
        y = torch.ops.quantized.linear_dynamic(z.div_(half), self._packed, False)  # [..., out] = W(x - mid)/half
        # x W^T + b = half * y + mid * (W @ ones) + b: the last two as one rank-2 product
        shape = y.shape
        y = y.view(-1, shape[-1]).mul_(half.view(-1, 1))
        offsets = torch.cat([mid.view(-1, 1), torch.ones_like(mid.view(-1, 1))], 1)  # [tokens, 2]
        return y.addmm_(offsets, self.row_sums_and_bias).view(shape)

    def weight_int8(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The int8 weight [out, in] (smoothing folded in) and its per-row scale [out]."""
        qweight, _ = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.int_repr(), qweight.q_per_channel_scales().float()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"smoothed={self.inv_smooth is not None}, per_token={self.per_token}"
        )


def _forward_with_hooks(model: nn.Module, batches: Iterable[dict], hooks: dict[str, Callable]) -> None:
    """Run the calibration batches once, with hooks[name] as a forward hook on that module."""
    handles = [m.register_forward_hook(hooks[name]) for name, m in model.named_modules() if name in hooks]
    try:
        with torch.inference_mode():
            for batch in batches:
                model(**batch)
    finally:
        for handle in handles:
            handle.remove()


def input_ranges(model: nn.Module, batches: Iterable[dict]) -> dict[str, torch.Tensor]:
    """amax over calibration batches of every Linear's input, per input channel."""
    ranges: dict[str, torch.Tensor] = {}

    def record(name: str) -> Callable:
        def hook(mod, args, out) -> None:
            amax = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
            ranges[name] = torch.maximum(ranges[name], amax) if name in ranges else amax

        return hook

    _forward_with_hooks(model, batches, {n: record(n) for n, m in model.named_modules() if isinstance(m, nn.Linear)})
    return ranges


def output_errors(model: nn.Module, originals: dict[str, nn.Linear], batches: Sequence[dict]) -> dict[str, float]:
    """Worst relative error (L2 per token) of each Int8Linear against its float original."""
    errors: dict[str, float] = {}

    def compare(name: str) -> Callable:
        def hook(mod, args, out) -> None:
            ref = originals[name](args[0])
            err = (out - ref).norm(dim=-1) / ref.norm(dim=-1).clamp(min=1e-6)
            errors[name] = max(errors.get(name, 0.0), float(err.max()))

        return hook

    _forward_with_hooks(
        model,
        batches,
        {n: compare(n) for n, m in model.named_modules() if isinstance(m, Int8Linear) and n in originals},
    )
    return errors


def quantize_int8(
    model: nn.Module,
    calibration: Sequence[dict] | None = None,
    alpha: float = DEFAULT_ALPHA,
    skip: Sequence[str] = (),
    smooth: bool = True,
    per_token: bool = True,
    max_error: float | None = DEFAULT_MAX_ERROR,
) -> nn.Module:
    """Replace the model's nn.Linear layers by Int8Linear, in place; returns the model.

    calibration: a few batches of real text (dicts of model arguments) to measure activation
    ranges for SmoothQuant (random word ids do not show the outliers and make it worse) and each
    layer's int8 error; without it, no smoothing and every Linear is quantized.
    skip: regexes of module names to keep in float. max_error: with calibration, Linears whose
    output error exceeds it go back to float (None: keep all int8).
    Tied output embeddings (the MLM decoder) are never quantized.
    """
    if (
        "fbgemm" not in torch.backends.quantized.supported_engines
        and "x86" not in torch.backends.quantized.supported_engines
    ):
        raise BertkitError("int8 inference needs PyTorch's fbgemm/x86 quantized engine (an x86 CPU build)")
    if not 0.0 <= alpha <= 1.0:
        raise BertkitError(f"alpha must be in [0, 1], got {alpha}")
    model.eval()
    ranges: dict[str, torch.Tensor] = {}
    if smooth and calibration is not None:
        ranges = input_ranges(model, calibration)
    originals: dict[str, tuple[nn.Module, str, nn.Linear]] = {}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if not isinstance(child, nn.Linear) or any(re.search(p, name) for p in skip):
                continue
            if name.endswith("predictions.decoder"):
                continue
            s = None
            if smooth and name in ranges:
                w_amax = child.weight.detach().abs().amax(0).clamp(min=1e-5)  # per input channel
                s = (ranges[name].float().clamp(min=1e-5) ** alpha / w_amax ** (1 - alpha)).clamp(1e-2, 1e2)
            setattr(parent, child_name, Int8Linear(child, s, per_token))
            originals[name] = (parent, child_name, child)
    if calibration is not None and max_error is not None:
        errors = output_errors(model, {n: lin for n, (_, _, lin) in originals.items()}, calibration)
        for name, err in errors.items():
            if err > max_error:
                parent, child_name, linear = originals[name]
                setattr(parent, child_name, linear)
    return model


def float_layers(model: nn.Module) -> list[str]:
    """Names of the Linear layers that stayed float in a quantized model (the MLM decoder aside)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.endswith("predictions.decoder")]
