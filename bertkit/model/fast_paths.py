"""CPU speed machinery beside the architecture: each piece computes what model/bert.py describes, faster.

- `dropout_mask` / `Dropout`: inverted dropout from 16-bit slices of a hash of (seed, position),
  in C where it is built (native.py), cheaper on CPU than torch's per-element bernoulli (training only).
- `Embedding`: nn.Embedding whose CPU training gradient is written into a buffer kept between
  steps: a fresh dense [vocab, H] gradient each step costs a page fault per 4 KiB on CPU.
- `Packing`: the real tokens of a padded batch as [N, H] rows, so the position-wise layers skip
  the padding (fine-tuning, embeddings).
- `explicit_attention`: softmax(QK^T / sqrt(d) + mask) V written out, for attention probabilities,
  short inputs and the CPU dropout; `use_explicit_attention` decides when it runs.
- `c_attention`: inside `fast_inference()` on one CPU thread (bertkit's batching workers), attention
  in C over the packed projection (native.py): no padding, mask or layout copies around it.
- `unpadded`: a batch without padding runs without a mask (SDPA's fastest kernel), decided
  outside any trace so an exported graph always carries the mask.
- `linear` / `linear_act` / `linear_add`: inside `fast_inference()` (bertkit's batching loop), each
  CPU inference projection runs as one oneDNN matmul on weights packed once for it, with the GELU
  or the residual add done inside the same kernel (PyTorch's default float32 matmul there is
  MKL's, slower on these shapes, and the GELU and the add would each be another pass over the
  activations). An int8 projection folds the GELU or the add into its own C kernels the same way
  (quantize.Int8Linear.fused).

The equality of each fast path with the plain computation is tested (tests/model/test_bert.py,
tests/model/test_dropout.py, tests/model/test_fast_paths.py); docs/model.md has the figures.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertkit.model import native

# at inference, attention over at most this many tokens takes the explicit path: three small
# batched ops cost less than the fused kernel's per-block set-up there
SHORT_SEQUENCE = 16


def tracing() -> bool:
    """True while torch.compile, torch.export, torch.onnx or torch.jit records the graph: no data-dependent
    Python branches then, so the recorded graph holds for every input."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def unpadded(attention_mask: torch.Tensor) -> bool:
    """Whether every position is a real token (then no mask is needed); never while tracing."""
    return not tracing() and bool(attention_mask.bool().all())


# ---------------------------------------------------------------------- dropout
def dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout multiplier shaped like `like`: 0 with probability p, else 1/(1-p).

    Why not torch's own dropout: on CPU its bernoulli_ draws one random double per element, in
    one thread. Here every element gets 16 bits of a 64-bit hash of (seed, position) (4 elements
    per hash), compared against a threshold: p is realised in steps of 1/65,536 (0.1 -> 0.100006).
    The seed is one draw of torch's generator, so runs stay reproducible and resumable; the C
    kernel (native.py) and `hashed_bits` give the same mask, written in like's dtype at once.
    """
    seed = int(torch.randint(-(2**63), 2**63 - 1, (1,)).item())  # torch's default (CPU) generator
    threshold = -32768 + round(p * 65536)  # keep: signed 16 bits >= threshold
    scale = 1.0 / (1.0 - p)
    found = native.kernels() if like.device.type == "cpu" and like.dtype in _MASK_DTYPES else None
    if found is not None:
        return found.dropout_mask(torch.empty(like.shape, dtype=like.dtype), seed, threshold, scale)
    keep = hashed_bits(seed, like.numel(), like.device).view(like.shape) >= threshold
    kept = torch.tensor(scale, dtype=like.dtype, device=like.device)
    return torch.where(keep, kept, kept.new_zeros(()))


_MASK_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # splitmix64's counter step
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # its output multipliers


def _int64(u: int) -> int:
    """A 64-bit pattern as the signed int64 torch keeps it."""
    u &= 2**64 - 1
    return u - 2**64 if u >= 2**63 else u


def _shift_right(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 bit patterns."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def hashed_bits(seed: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[n] int16: element i is 16-bit slice i % 4 of splitmix64(seed + (i // 4 + 1) * gamma), the
    bits kernels.c's bk_dropout_mask* compare (its plain reference, and the path without C)."""
    z = torch.arange(1, (n + 3) // 4 + 1, dtype=torch.int64, device=device) * _int64(_GOLDEN_GAMMA) + _int64(seed)
    for shift, multiplier in zip((30, 27), _MIX):  # int64 products wrap modulo 2^64, as C's uint64 do
        z = (z ^ _shift_right(z, shift)) * _int64(multiplier)
    z = z ^ _shift_right(z, 31)
    slices = z.view(torch.int16).view(-1, 4)  # in memory order: on little-endian, slice j is bits 16j .. 16j + 15
    return (slices if sys.byteorder == "little" else slices.flip(1)).reshape(-1)[:n]


def use_own_dropout(x: torch.Tensor, p: float, training: bool) -> bool:
    """The bit-mask dropout above on CPU; CUDA's fused dropout kernel is already cheap. Not while
    a graph is recorded: the mask's seed is a Python number there (a trace would keep one mask)."""
    return training and p > 0 and x.device.type == "cpu" and not tracing()


class Dropout(nn.Dropout):
    """nn.Dropout with the cheaper CPU mask of `dropout_mask` (same module name and repr)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_own_dropout(x, self.p, self.training) and not self.inplace:
            return x * dropout_mask(x, self.p)
        return super().forward(x)

    def add_to(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """residual + dropout(x); on CPU the mask and the add run as one addcmul pass."""
        if use_own_dropout(x, self.p, self.training):
            return torch.addcmul(residual, x, dropout_mask(x, self.p))
        return self(x) + residual


# ---------------------------------------------------------------------- embedding gradient recycled
class _Lookup(torch.autograd.Function):
    """F.embedding(ids, weight, padding_idx), its weight gradient summed into `owner`'s kept buffer."""

    @staticmethod
    def forward(ctx: Any, ids: torch.Tensor, weight: torch.Tensor, owner: Embedding) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.owner = owner
        return F.embedding(ids, weight, owner.padding_idx)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        (ids,) = ctx.saved_tensors
        owner = ctx.owner
        grad = owner._gradient_buffer(grad_out)
        # the additions in index order, as embedding_dense_backward makes them: the same bits
        grad.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, grad.shape[1]))
        if owner.padding_idx is not None:
            grad[owner.padding_idx] = 0
        # an alias, so autograd takes it as weight.grad instead of copying it (it copies a tensor
        # referenced elsewhere); the buffer is used again once that alias is gone
        return None, grad.detach(), None


class Embedding(nn.Embedding):
    """nn.Embedding (same name, parameters and repr) whose CPU training gradient reuses its memory.

    Why: the word embedding's dense gradient is [vocab, H] (47 MB for BERT's 30,522 x 384). glibc
    serves blocks that large by mmap and returns them at free, so every step's fresh gradient
    faults in 11,000 pages while zeroing them, several times the cost of zeroing memory already
    mapped (docs/finetuning.md). The gradient is written into a buffer kept between steps instead,
    handed to autograd as an alias; the buffer is zeroed and used again only when no tensor other
    than its own refers to its memory any more (after zero_grad(set_to_none=True), the default),
    and otherwise a second one is used: accumulated gradients are never overwritten. The values
    are bit for bit those of nn.Embedding (tested).
    """

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if (
            self.training
            and torch.is_grad_enabled()
            and self.weight.requires_grad
            and self.weight.device.type == "cpu"
            and self.max_norm is None
            and not self.scale_grad_by_freq
            and not self.sparse
            and not tracing()
        ):
            return _Lookup.apply(ids, self.weight, self)
        if not self.training and not tracing():
            self.__dict__.pop("_buffers_kept", None)  # out of training, the memory goes back
        return super().forward(ids)

    def _gradient_buffer(self, like: torch.Tensor) -> torch.Tensor:
        """A zeroed [vocab, H] buffer that no other tensor refers to (at most two are kept)."""
        kept: list[tuple[torch.Tensor, int]] = self.__dict__.setdefault("_buffers_kept", [])
        for buffer, alone in kept:
            if buffer.dtype == like.dtype and _storage_users(buffer) == alone:
                return buffer.zero_()
        buffer = torch.zeros(self.weight.shape, dtype=like.dtype)
        users = _storage_users(buffer)
        if len(kept) < 2 and users is not None:
            kept.append((buffer, users))
        return buffer


def _storage_users(t: torch.Tensor) -> int | None:
    """How many references t's memory has (None where PyTorch cannot say: then nothing is reused)."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    return None if count is None else count(t.untyped_storage()._cdata)


# ---------------------------------------------------------------------- padding skipped
@dataclass
class Packing:
    """Where a padded batch's real tokens sit, so the position-wise layers can skip the padding.

    Every Linear, GELU and LayerNorm runs on the packed [N, H] rows of real tokens only
    (N = attention_mask.sum()); attention, which needs the [B, T] layout, pads its projections
    back, and packs its output again (the C attention instead reads each sequence's rows from `starts`).
    """

    index: torch.Tensor  # [N] flat positions of the real tokens in B*T, ascending
    batch: int
    length: int

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Packing:
        return cls(attention_mask.flatten().nonzero().squeeze(1), *attention_mask.shape)

    @functools.cached_property
    def starts(self) -> torch.Tensor:
        """[B + 1] int64: sequence b is packed rows starts[b] .. starts[b + 1] (the real tokens
        before position b*T); computed only where read (the C attention), not at every training step."""
        bounds = torch.arange(self.batch + 1, device=self.index.device) * self.length
        return torch.searchsorted(self.index, bounds)

    def pack(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, F] -> [N, F]
        return x.reshape(self.batch * self.length, x.shape[-1]).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:  # [N, F] -> [B, T, F], zeros at the padding
        # in place into fresh zeros: out-of-place index_copy would copy the zeros once more, and
        # index_add_ runs on both threads where index_copy_ runs on one (docs/finetuning.md)
        full = x.new_zeros(self.batch * self.length, x.shape[-1]).index_add_(0, self.index, x)
        return full.view(self.batch, self.length, x.shape[-1])


# ---------------------------------------------------------------------- explicit attention
def use_explicit_attention(q: torch.Tensor, output_attentions: bool, own_dropout: bool, training: bool) -> bool:
    """The written-out path when the probabilities are wanted, for short inputs at inference, and
    with the CPU dropout (SDPA would fall back to its own unfused math with torch's dropout)."""
    short = q.shape[2] <= SHORT_SEQUENCE and not training and not tracing()
    return output_attentions or short or own_dropout


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout_p: float, training: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(QK^T / sqrt(d) + mask) V for q [B, A, rows, D], k and v [B, A, T, D] -> (context, probs)."""
    B, A, rows, D = q.shape
    T = k.shape[2]
    scale = 1.0 / math.sqrt(D)
    own_dropout = use_own_dropout(q, dropout_p, training)
    if mask is not None and own_dropout:
        # training: scale and mask ride in the matmul (mask + scale * QK^T), two passes fewer over
        # [B, A, rows, T]; inference keeps Hugging Face's order, bit for bit
        bias = mask.expand(B, A, 1, T).reshape(B * A, 1, T)
        scores = torch.baddbmm(bias, q.reshape(B * A, rows, D), k.reshape(B * A, T, D).transpose(1, 2), alpha=scale)
        scores = scores.view(B, A, rows, T)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # [B, A, rows, T]
        if mask is not None:
            scores = scores + mask
    probs = scores.softmax(dim=-1)
    dropped = probs * dropout_mask(probs, dropout_p) if own_dropout else F.dropout(probs, dropout_p, training)
    return torch.matmul(dropped, v), probs


def c_attention_applies(x: torch.Tensor, head_size: int, training: bool) -> bool:
    """Whether attention can run in C (c_attention): CPU float32 inference inside fast_inference()
    on ONE intra-op thread (the C code is single-threaded: bertkit's batching workers and serve
    runners run one thread each; a caller using more keeps PyTorch's parallel kernels), heads of a
    multiple of 16 dimensions, and the kernels built (native.py) with wide vectors."""
    return (
        _FAST_INFERENCE.get() is not None
        and not training
        and not torch.is_grad_enabled()
        and not tracing()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and head_size % 16 == 0
        and torch.get_num_threads() == 1
        and _attention_kernels() is not None
    )


def _attention_kernels() -> native.Kernels | None:
    """The kernels where their attention was measured faster than PyTorch's: builds with vectors
    of 8 floats or more (AVX2, AVX-512; bench/attention.py)."""
    found = native.kernels()
    return found if found is not None and found.attention_lanes >= 8 else None


def c_attention(qkv: torch.Tensor, packing: Packing | None, heads: int) -> torch.Tensor:
    """softmax(QK^T / sqrt(d)) V per head over the fused projection, in C: qkv packed [N, 3H] with
    its Packing, or [B, T, 3H] of a batch without padding -> the merged context, [N, H] or [B, T, H]."""
    if packing is not None:
        flat, starts = qkv, packing.starts
    else:
        B, T = qkv.shape[:2]
        flat, starts = qkv.reshape(B * T, -1), torch.arange(B + 1) * T
    found = _attention_kernels()
    assert found is not None, "c_attention runs where c_attention_applies"
    # float32 in and out; an autocast context may have made the projection bfloat16
    context = found.attention(flat.float().contiguous(), starts, heads).to(qkv.dtype)
    return context if packing is not None else context.view(B, T, -1)


# ---------------------------------------------------------------------- oneDNN projections at CPU inference
def onednn_wanted() -> bool:
    """Whether CPU inference runs its projections on oneDNN: on CPUs PyTorch runs at its AVX-512
    level, where it was measured faster than the default float32 matmul (docs/model.md); elsewhere
    the plain nn.Linear stays, unmeasured. BERTKIT_ONEDNN=0 turns it off (A/B checks)."""
    return (
        os.environ.get("BERTKIT_ONEDNN", "1") != "0"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    )


ONEDNN = onednn_wanted()  # a module attribute, so a test can compare both paths on any CPU
# the innermost fast_inference() scope (None outside any): weights cannot change inside one
_FAST_INFERENCE: ContextVar[object | None] = ContextVar("bertkit_fast_inference", default=None)


@contextlib.contextmanager
def fast_inference(scope: object | None = None) -> Iterator[None]:
    """Inside (bertkit's batching loop, per thread), CPU inference projections may run on oneDNN;
    outside, a forward sums in nn.Linear's order, bit for bit what transformers computes.

    Weights are checked for changes once per scope. A caller whose weights cannot change between
    its calls (a server's frozen model) passes the same `scope` object to every one of them, from
    any thread, so the check runs once instead of once per forward."""
    token = _FAST_INFERENCE.set(object() if scope is None else scope)
    try:
        yield
    finally:
        _FAST_INFERENCE.reset(token)


# activation kind (model/config.ACTIVATIONS) -> oneDNN post-op (name, algorithm)
POST_OPS = {"gelu": ("gelu", "none"), "gelu_tanh": ("gelu", "tanh"), "relu": ("relu", "")}
# elements of a weight compared to tell whether it changed since it was packed
FINGERPRINT_SIZE = 64


@dataclass
class _Packed:
    weight: torch.Tensor  # in oneDNN's blocked layout
    key: tuple[int, int]  # the weight's storage and version when packed
    fingerprint: torch.Tensor  # FINGERPRINT_SIZE of its elements then
    scope: object  # the fast_inference() scope that last checked it


_PACKED: weakref.WeakKeyDictionary[nn.Module, _Packed] = weakref.WeakKeyDictionary()


def onednn_applies(x: torch.Tensor, module: Any) -> bool:
    """A plain nn.Linear in eval mode at CPU inference (no autograd, not tracing), float32 or bfloat16."""
    return (
        ONEDNN
        and _FAST_INFERENCE.get() is not None
        and type(module) is nn.Linear
        and not module.training
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and module.weight.dtype == x.dtype
        and not torch.is_grad_enabled()
        and not tracing()
    )


def _fingerprint(weight: torch.Tensor) -> torch.Tensor:
    flat = weight.detach().reshape(-1)
    return flat[:: max(1, flat.numel() // FINGERPRINT_SIZE)][:FINGERPRINT_SIZE].clone()


def packed(module: Any) -> torch.Tensor:
    """The module's weight in oneDNN's blocked layout, packed again whenever the weight changes.

    Checked once per fast_inference() scope: the storage and version counter catch a replaced or
    in-place edited weight, but a fused optimizer (torch.optim.AdamW(fused=True), bertkit's own)
    updates weights without bumping their version, so a sample of the elements is compared too; an
    optimizer step moves every one of them. Kept beside the module, not on it: the packed tensor
    is opaque (no deepcopy, no state_dict)."""
    scope = _FAST_INFERENCE.get()
    found = _PACKED.get(module)
    if found is not None and found.scope is scope:
        return found.weight
    weight = module.weight
    key = (weight.data_ptr(), -1 if weight.is_inference() else weight._version)  # inference tensors have no version
    fingerprint = _fingerprint(weight)
    if found is None or found.key != key or not torch.equal(found.fingerprint, fingerprint):
        found = _Packed(torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None), key, fingerprint, scope)
        _PACKED[module] = found
    found.scope = scope
    return found.weight


def linear(module: Any, x: torch.Tensor) -> torch.Tensor:
    """module(x), on oneDNN where it applies (module: an nn.Linear, or a replacement such as int8's)."""
    if onednn_applies(x, module):
        return torch.ops.mkldnn._linear_pointwise(x, packed(module), module.bias, "none", [], "")
    return module(x)


def linear_act(module: Any, x: torch.Tensor, act: str) -> torch.Tensor | None:
    """act(module(x)) in one oneDNN kernel (act: a key of POST_OPS), or in int8's way back; None
    where neither applies."""
    if onednn_applies(x, module) and act in POST_OPS:
        name, algorithm = POST_OPS[act]
        return torch.ops.mkldnn._linear_pointwise(x, packed(module), module.bias, name, [], algorithm)
    if _int8_fuses(module):
        return module.fused(x, act=act)
    return None


def linear_add(module: Any, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor | None:
    """module(x) + residual in one oneDNN kernel, or in int8's way back; None where neither applies."""
    if onednn_applies(x, module) and residual.shape == x.shape[:-1] + (module.out_features,):
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual.contiguous(), packed(module), module.bias, "add")
    if _int8_fuses(module):
        return module.fused(x, residual=residual)
    return None


def _int8_fuses(module: Any) -> bool:
    """An int8 projection (quantize.Int8Linear, which has `fused`) at inference: its C kernels may
    fold the activation or the residual add into their way back (they answer None where they do
    not apply: another device, dtype or shape). Only inside fast_inference(), as oneDNN: int8's
    calibration hooks see plain projections."""
    return hasattr(module, "fused") and _FAST_INFERENCE.get() is not None and not torch.is_grad_enabled()
