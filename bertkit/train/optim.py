"""BERT's optimizer and learning-rate schedule, shared by pretraining and fine-tuning.

Two optimizers, both over the same two parameter groups:
  "adamw"  Adam with decoupled weight decay (Loshchilov & Hutter), as google-research/bert and
           Hugging Face train BERT. LayerNorm weights and biases are not decayed: shrinking a
           normalization gain or an offset towards 0 is not regularisation.
  "adam"   the lecture's plain Adam: no weight decay at all (the caller also drops clipping).

The numbers (lr, betas, eps, weight decay, warmup) come from a recipe (bertkit.train.recipes for
pretraining, the fine-tuning settings for the tasks); nothing here has a default for them.

    s = recipes.LECTURE.settings
    optimizer = build_optimizer(model, kind=s.optimizer, lr=s.lr, betas=(s.adam_beta1, s.adam_beta2),
                                eps=s.adam_eps, weight_decay=s.weight_decay)
    scheduler = linear_schedule(optimizer, s.warmup_steps, s.max_steps)

The schedule is a `torch.optim.lr_scheduler.LambdaLR` whose multiplier is a small object
(`WarmupLinearDecay`), so its warmup and total travel with the scheduler's state_dict: a run whose
total was re-planned for a time budget resumes on the same schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from bertkit.errors import BertkitError
from bertkit.train.settings import OPTIMIZERS


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, LayerNorm gains and any other 1-D parameter are left undecayed."""
    return param.ndim < 2 or name.endswith(".bias") or "layernorm" in name.lower() or "layer_norm" in name.lower()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():  # tied weights appear once
        if not param.requires_grad:
            continue
        (no_decay if is_no_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module,
    *,
    kind: str,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """AdamW (or, with kind="adam", plain Adam without weight decay) over two parameter groups.

    `fused=None` picks torch's fused kernel when every parameter lives on a device that has
    one (CPU and CUDA do): one pass over the weights instead of a dozen elementwise ops.
    """
    if kind not in OPTIMIZERS:
        raise BertkitError(f"--optimizer {kind!r}: choose one of {', '.join(OPTIMIZERS)}")
    if lr <= 0:
        raise BertkitError(f"--lr must be positive, got {lr}")
    groups = param_groups(model, weight_decay if kind == "adamw" else 0.0)
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for g in groups for p in g["params"])
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps, fused=fused)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


class WarmupLinearDecay:
    """The lr multiplier at step s: s / warmup during warmup, then (total - s) / (total - warmup)
    down to 0 at `total_steps` (as Hugging Face's get_linear_schedule_with_warmup).

    A callable object rather than a closure, so LambdaLR saves its fields with the scheduler and a
    re-planned total (a time budget) survives a resume.
    """

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps = self.requested_warmup = max(0, int(warmup_steps))
        self.total_steps = max(1, int(total_steps))

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupLinearDecay(warmup_steps, total_steps))


def replan_schedule(scheduler: object, total_steps: int) -> bool:
    """Move the end of a linear schedule to `total_steps`; False when `scheduler` has none to move.

    The warmup keeps its length unless the run became too short for it: then it takes half the
    run, so that the lr still decays to 0 by the end.
    """
    shapes = [f for f in getattr(scheduler, "lr_lambdas", []) if isinstance(f, WarmupLinearDecay)]
    for shape in shapes:
        shape.total_steps = max(1, int(total_steps))
        shape.warmup_steps = min(getattr(shape, "requested_warmup", shape.warmup_steps), shape.total_steps // 2)
    return bool(shapes)


def warmup_from_ratio(total_steps: int, ratio: float) -> int:
    """Fine-tuning's habit: warm up over a fraction (e.g. 0.1) of the run."""
    return int(round(total_steps * ratio))
