"""Int8 inference on CPU that keeps sentence embeddings within cosine 0.99 of float32.

`torch.ao.quantization.quantize_dynamic` with its defaults drops MiniLM's mean-pooled embeddings
to cosine ~0.93 on average (0.77 for the worst sentence). Measured on 2,000 SST-2 sentences
(mean / worst cosine to float32), each step below is needed:

1. one weight scale per matrix: a few large rows set the scale and the rest lose their bits
   -> one scale per output row (per-channel weights);
2. x86 `reduce_range`: activations get only 7 bits -> use 8. Weights get 8 bits where the CPU
   has VNNI (its int8 dot products sum exactly into int32); elsewhere the uint8 x int8 pair sums
   of `vpmaddubsw` saturate int16 for 8-bit x 8-bit (measured: twice the ideal error), so
   weights keep 7 bits there (|q| <= 63: 255 * 63 * 2 < 32767). An exported ONNX graph, which
   may run on either kind of CPU, always gets 7-bit weights;
3. one activation scale per call: an outlier token sets it for the whole batch -> each row is
   mapped onto [-1, 1] before the kernel (its own 8-bit grid per token) and mapped back after;
4. BERT's outlier channels (large LayerNorm gains, GELU tails) -> SmoothQuant: divide input
   channel j by s_j and multiply weight column j by s_j (the product is unchanged),
   s_j = amax(x_j)^a / amax(W[:, j])^(1-a), a = 0.5, amax(x_j) measured on real calibration text;
5. the most sensitive layers: after quantizing, a Linear whose output on the calibration text is
   off by more than 8% (relative L2 per token; in MiniLM layer 0's feed-forward output, 8.03% at
   a = 0.5) is quantized again with each strength of ALPHA_GRID, and keeps the best if it is under
   the gate (that layer: 7.7% at a = 0.45; 8-bit weights only: with 7-bit ones the end-to-end
   cosine suffered); otherwise it keeps its float weights, run in bfloat16
   on CPUs that multiply bfloat16 natively (an error far below int8's, half float32's time), else
   float32.
Result for MiniLM-L6 (bench/infer.py): see docs/model.md.

Everything that is not a big matmul (embeddings, LayerNorm, softmax, GELU, attention's own
products) stays float32. The int8 matmuls are `torch._int_mm` (int8 x int8 -> int32); the passes
around them run in C where a compiler is at hand (model/native.py), with `Int8Linear.reference`
(and `reference_codes`), the same steps in PyTorch ops, as their definition and fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from bertkit.errors import BertkitError
from bertkit.hardware import cpu_flags, cpu_has_native
from bertkit.model import fast_paths, native

DEFAULT_ALPHA = 0.5
DEFAULT_MAX_ERROR = 0.08
# SmoothQuant strengths tried, one layer at a time, for a Linear whose error at `alpha` is over the gate
ALPHA_GRID = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


PORTABLE_QMAX = 63  # 7-bit weights: exact on every x86 CPU (point 2 above)


def weight_qmax() -> int:
    """8-bit weights where the CPU has VNNI (exact int32 sums); 7 bits elsewhere (see point 2 above)."""
    return 127 if cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"} else PORTABLE_QMAX


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (one scale per output row) and x quantized per token to 8 bits.

    Each token's row is centred on the middle of its range and scaled onto [-127, 127]
    (per_token=False: one centre and scale for the whole call), multiplied in int32
    (`torch._int_mm`), and mapped back: y = (half/127) * s_w * (q Wq^T) + mid * (W 1) + b,
    the last two terms as one rank-2 product.
    """

    inv_smooth: torch.Tensor | None  # buffers: 1 / the SmoothQuant factors (or None), the weight and its scales
    qweight_t: torch.Tensor
    w_scale: torch.Tensor
    row_sums_and_bias: torch.Tensor

    def __init__(
        self, linear: nn.Linear, smooth: torch.Tensor | None = None, per_token: bool = True, qmax: int | None = None
    ):
        super().__init__()
        self.per_token = per_token
        weight = linear.weight.detach().float()
        if smooth is not None:
            weight = weight * smooth[None, :]  # [out, in] * [1, in]
        self.register_buffer("inv_smooth", None if smooth is None else (1.0 / smooth).float())
        self.qmax = qmax or weight_qmax()  # the weights' largest integer: 127 (8 bits) or 63 (7 bits)
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / self.qmax  # [out]
        qweight = torch.round(weight / scale[:, None]).to(torch.int8)  # [out, in]
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("qweight_t", qweight.t().contiguous())  # [in, out], the layout _int_mm reads
        self.register_buffer("w_scale", scale)
        # [2, out]: W @ ones (what a per-row shift of x adds to the output) and the bias
        self.register_buffer("row_sums_and_bias", torch.stack([(qweight.float() * scale[:, None]).sum(1), bias]))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.fused(x)  # the C kernels, where they apply
        if fused is not None:
            return fused
        shape, dtype = x.shape, x.dtype
        rows = x.reshape(-1, shape[-1]).float()
        if not rows.shape[0]:  # no rows, no range to take
            return rows.new_zeros(*shape[:-1], self.out_features, dtype=dtype)
        return self.reference(rows).view(*shape[:-1], self.out_features).to(dtype)

    def reference_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: float32 [rows, in] -> (int8 codes [rows, in], each row's mid and half-range [rows, 1]),
        in PyTorch ops: the definition the C kernels (model/native.py) are tested against."""
        if self.inv_smooth is not None:
            x = x * self.inv_smooth
        # amin and amax apart: torch.aminmax over the last dim is several times slower
        lo = x.amin(-1, keepdim=True) if self.per_token else x.amin().expand(x.shape[0], 1)
        hi = x.amax(-1, keepdim=True) if self.per_token else x.amax().expand(x.shape[0], 1)
        mid, half = (hi + lo) * 0.5, ((hi - lo) * 0.5).clamp_(min=1e-8)  # [tokens, 1]
        return (x - mid).mul_(127.0 / half).round_().to(torch.int8), mid, half

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The projection in PyTorch ops, x: float32 [rows, in] -> [rows, out]; what runs where the C
        kernels are not built, and their oracle."""
        q, mid, half = self.reference_codes(x)
        # int32 -> float, then scaled in place: a mixed int32 * float multiply casts into a temporary first
        y = torch._int_mm(q, self.qweight_t).to(torch.float32).mul_(self.w_scale)  # [tokens, out]
        y.mul_(half * (1.0 / 127.0))
        offsets = torch.cat([mid, torch.ones_like(mid)], 1)  # [tokens, 2]
        return y.addmm_(offsets, self.row_sums_and_bias)

    def _kernels(self, x: torch.Tensor) -> native.Kernels | None:
        """The C kernels where they take these rows: per-token float32 CPU rows, outside any trace."""
        if not self.per_token or x.device.type != "cpu" or self.w_scale.dtype != torch.float32 or fast_paths.tracing():
            return None
        return native.kernels()

    def fused(
        self, x: torch.Tensor, act: str | None = None, residual: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """act(x W^T + b [+ residual]) in the C kernels, the activation and the add folded into their
        way back (forward; fast_paths.linear_act / linear_add); None where they do not apply (the
        caller then runs the PyTorch steps)."""
        shape = x.shape[:-1] + (self.out_features,)
        rows = x.reshape(-1, x.shape[-1]).float()
        kernels = self._kernels(rows) if act in native.ACTIVATIONS and rows.shape[0] else None
        if kernels is None or (residual is not None and residual.shape != shape):
            return None
        if residual is not None:
            residual = residual.reshape(rows.shape[0], -1).float().contiguous()
        q, mid, half = kernels.quantize_rows(rows.contiguous(), self.inv_smooth)
        row_sums, bias = self.row_sums_and_bias
        acc = torch._int_mm(q, self.qweight_t)
        return (
            kernels.dequantize_rows(acc, self.w_scale, half, mid, row_sums, bias, residual, act).view(shape).to(x.dtype)
        )

    def weight_int8(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The int8 weight [out, in] (smoothing folded in) and its per-row scale [out]."""
        return self.qweight_t.t(), self.w_scale

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"smoothed={self.inv_smooth is not None}, per_token={self.per_token}"
        )


class Bf16Linear(nn.Module):
    """A Linear kept out of int8 (its int8 error is too large), run in bfloat16 on a CPU that
    multiplies bfloat16 natively: half the float32 time, an error far below int8's."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear.to(torch.bfloat16).eval()
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_paths.linear(self.linear, x.to(torch.bfloat16)).to(x.dtype)


def keep_float(linear: nn.Linear) -> nn.Module:
    """The form a too-sensitive Linear keeps: bfloat16 where native on this CPU, else float32."""
    return Bf16Linear(linear) if linear.weight.device.type == "cpu" and cpu_has_native("bf16") else linear


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


def worst_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """The largest relative error (L2 per token) of out against ref."""
    return float(((out - ref).norm(dim=-1) / ref.norm(dim=-1).clamp(min=1e-6)).max())


def smoothing(x_amax: torch.Tensor, weight: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant's per-input-channel factors s_j = amax(x_j)^alpha / amax(W[:, j])^(1 - alpha)."""
    w_amax = weight.detach().abs().amax(0).clamp(min=1e-5)
    return (x_amax.float().clamp(min=1e-5) ** alpha / w_amax ** (1 - alpha)).clamp(1e-2, 1e2)


def layer_inputs(model: nn.Module, names: Sequence[str], batches: Iterable[dict]) -> dict[str, torch.Tensor]:
    """Every row the named modules see over the calibration batches, [rows, in_features] each."""
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def record(name: str) -> Callable:
        def hook(mod, args, out) -> None:
            seen[name].append(args[0].detach().reshape(-1, args[0].shape[-1]))

        return hook

    _forward_with_hooks(model, batches, {name: record(name) for name in names})
    return {name: torch.cat(rows) for name, rows in seen.items()}


def output_errors(model: nn.Module, originals: dict[str, nn.Linear], batches: Sequence[dict]) -> dict[str, float]:
    """Worst relative error (L2 per token) of each Int8Linear against its float original."""
    errors: dict[str, float] = {}

    def compare(name: str) -> Callable:
        def hook(mod, args, out) -> None:
            errors[name] = max(errors.get(name, 0.0), worst_error(out, originals[name](args[0])))

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
    weight_qmax: int | None = None,
) -> nn.Module:
    """Replace the model's nn.Linear layers by Int8Linear, in place; returns the model.

    calibration: a few batches of real text (dicts of model arguments) to measure activation
    ranges for SmoothQuant (random word ids do not show the outliers and make it worse) and each
    layer's int8 error; without it, no smoothing and every Linear is quantized.
    skip: regexes of module names to keep in float. max_error: with calibration, Linears whose
    output error exceeds it go back to float (None: keep all int8). weight_qmax: the weights' largest
    integer (default: this CPU's, `weight_qmax()`; PORTABLE_QMAX for a graph that runs elsewhere).
    Tied output embeddings (the MLM decoder) are never quantized.
    """
    if not hasattr(torch, "_int_mm"):
        raise BertkitError(f"int8 inference needs torch._int_mm (torch >= 2.2); this is torch {torch.__version__}")
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
            s = smoothing(ranges[name], child.weight, alpha) if smooth and name in ranges else None
            setattr(parent, child_name, Int8Linear(child, s, per_token, weight_qmax))
            originals[name] = (parent, child_name, child)
    if calibration is not None and max_error is not None:
        errors = output_errors(model, {n: lin for n, (_, _, lin) in originals.items()}, calibration)
        # 8-bit weights only: with 7 bits (no VNNI, portable graphs) the weights' own error doubles,
        # and a layer let in just under the gate cost an exported graph its cosine of 0.99
        over = [
            name
            for name, err in errors.items()
            if err > max_error and name in ranges and getattr(originals[name][0], originals[name][1]).qmax >= 127
        ]
        inputs = layer_inputs(model, over, calibration) if over else {}
        for name in over:  # another smoothing strength for this layer alone, before giving up on int8
            parent, child_name, linear = originals[name]
            with torch.inference_mode():
                ref = linear(inputs[name])
                tried = {
                    a: Int8Linear(linear, smoothing(ranges[name], linear.weight, a), per_token, weight_qmax)
                    for a in ALPHA_GRID
                }
                found = {a: worst_error(layer(inputs[name]), ref) for a, layer in tried.items()}
            best = min(found, key=lambda a: found[a])
            if found[best] <= max_error:
                setattr(parent, child_name, tried[best])
                errors[name] = found[best]
        for name, err in errors.items():
            if err > max_error:
                parent, child_name, linear = originals[name]
                setattr(parent, child_name, keep_float(linear))
    return model


def float_layers(model: nn.Module) -> list[str]:
    """Names of the Linear layers that stayed float (or bfloat16) in a quantized model (the MLM decoder aside)."""
    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, Bf16Linear))
        and not n.endswith("predictions.decoder")
        and not n.endswith(".linear")  # the inside of a Bf16Linear
    ]
