"""BERT's optimizer and learning-rate schedule, shared by pretraining and fine-tuning.

The seed's recipe: Adam with decoupled weight decay 0.01 (AdamW), beta1 0.9, beta2 0.999, and a
learning rate that rises linearly from 0 to its peak over the warmup steps, then falls linearly
to 0 at the last step. As in google-research/bert and Hugging Face, LayerNorm weights and biases
are not decayed: shrinking a normalization gain or an offset towards 0 is not regularisation.

    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    scheduler = linear_schedule(optimizer, warmup_steps=10_000, total_steps=1_000_000)

The schedule is a `torch.optim.lr_scheduler.LambdaLR`, so its state saves and resumes as usual.
"""

from __future__ import annotations

import torch
from torch import nn


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, LayerNorm gains and any other 1-D parameter are left undecayed."""
    return param.ndim < 2 or name.endswith(".bias") or "layernorm" in name.lower() or "layer_norm" in name.lower()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():  # tied weights appear once
        if not param.requires_grad:
            continue
        (no_decay if is_no_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module,
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over two groups (decayed / not decayed). eps 1e-6 as in Google's BERT.

    `fused=None` picks torch's fused kernel when every parameter lives on a device that has
    one (CPU and CUDA do): one pass over the weights instead of a dozen elementwise ops.
    """
    groups = param_groups(model, weight_decay)
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`.

    The multiplier at step s is s / warmup during warmup and (total - s) / (total - warmup) after,
    as Hugging Face's get_linear_schedule_with_warmup.
    """
    warmup_steps = max(0, int(warmup_steps))
    total_steps = max(1, int(total_steps))

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def warmup_from_ratio(total_steps: int, ratio: float) -> int:
    """Fine-tuning's habit: warm up over a fraction (e.g. 0.1) of the run."""
    return int(round(total_steps * ratio))
