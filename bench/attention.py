"""Attention at CPU inference: the C kernel (fast_paths.c_attention) against PyTorch's path.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/attention.py [--heads 12] [--head-size 32]

One thread (as each of bertkit.embed's workers), a batch of 32 sentences whose lengths spread
below the longest T, packed as the embedding loop packs them. PyTorch's path is what
BertSelfAttention runs without the kernel: pad the packed projection back to [B, T], the explicit
softmax(QK^T / sqrt(d) + mask) V up to 16 tokens or SDPA beyond, merge the heads and pack again.
Prints ms per call for both, the ratio, and the largest difference between their outputs.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from bertkit.hardware import describe
from bertkit.model import native
from bertkit.model.fast_paths import SHORT_SEQUENCE, Packing, explicit_attention


def pytorch_path(qkv: torch.Tensor, packing: Packing, mask: torch.Tensor, heads: int) -> torch.Tensor:
    B, T, H = packing.batch, packing.length, qkv.shape[1] // 3
    q, k, v = packing.pad(qkv).view(B, T, 3, heads, H // heads).permute(2, 0, 3, 1, 4).unbind(0)
    if T <= SHORT_SEQUENCE:
        context, _ = explicit_attention(q, k, v, mask, 0.0, False)
    else:
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return packing.pack(context.transpose(1, 2).reshape(B, T, H))


def per_call_ms(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-size", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[6, 10, 13, 16, 20, 32, 64, 128, 256])
    args = parser.parse_args()
    kernels = native.kernels()
    if kernels is None:
        raise SystemExit("no C kernels on this machine (see the log): nothing to compare")
    torch.set_num_threads(1)
    print(describe(), f"| batch 32, {args.heads} heads of {args.head_size}")
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for T in args.lengths:
            print(one_length(kernels, T, args.heads, args.head_size, g))


def one_length(kernels: native.Kernels, T: int, heads: int, head_size: int, g: torch.Generator) -> str:
    lengths = (T - torch.randint(0, max(2, T // 5), (32,), generator=g)).clamp(min=1)
    lengths[0] = T
    attention_mask = (torch.arange(T)[None] < lengths[:, None]).long()
    packing = Packing.of(attention_mask)
    mask = torch.zeros(32, 1, 1, T).masked_fill(attention_mask[:, None, None, :] == 0, torch.finfo().min)
    qkv = torch.randn(int(lengths.sum()), 3 * heads * head_size, generator=g)  # scores of spread ~1
    repeats = max(3, 2000 // T)
    ours = per_call_ms(lambda: kernels.attention(qkv, packing.starts, heads), repeats)
    theirs = per_call_ms(lambda: pytorch_path(qkv, packing, mask, heads), repeats)
    diff = kernels.attention(qkv, packing.starts, heads) - pytorch_path(qkv, packing, mask, heads)
    return (
        f"T={T:4d} ({int(lengths.sum()):5d} tokens): C {ours:7.3f} ms  PyTorch {theirs:7.3f} ms  "
        f"x{theirs / ours:5.2f}  max diff {diff.abs().max().item():.1e}"
    )


if __name__ == "__main__":
    main()
