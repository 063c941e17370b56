"""The training loop's contract: what a run is told (TrainConfig), what it keeps (TrainState),
and how it gets a loss (Objective). bertkit.train.loop documents how they plug together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bertkit.errors import BertkitError
from bertkit.train.batches import Batch, BatchSource, rows
from bertkit.train.settings import MAX_BAD_STEPS

CHECKPOINT_DIR = "checkpoints"  # inside the out folder: resume state, the last K steps
# TrainState fields a checkpoint stores and a resume restores (checked on resume: every key present)
LOOP_FIELDS = (
    "step",
    "epoch",
    "batch_in_epoch",
    "tokens",
    "train_seconds",
    "elapsed_seconds",
    "skipped_steps",
    "best_value",
    "best_step",
)
NON_FINITE = "non-finite steps"


class Objective:
    """The default: `model(**batch).loss` is a mean over the batch's rows."""

    def counts(self, batch: Batch) -> dict[str, float]:
        return {"loss": float(rows(batch))}

    def loss(
        self, model: torch.nn.Module, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[float, float]]]:
        out = model(**batch)
        if getattr(out, "loss", None) is None:
            raise BertkitError("the model returned no .loss; pass labels in the batch or give train() an objective")
        return {"loss": out.loss * rows(batch)}, {}

    def num_tokens(self, batch: Batch) -> int:
        if "attention_mask" in batch:
            return int(batch["attention_mask"].sum())
        if "input_ids" in batch:
            return int(batch["input_ids"].numel())
        return rows(batch)


@dataclass
class TrainConfig:
    out_dir: str | Path
    max_steps: int | None = None  # stop after this many optimizer steps ...
    epochs: float | None = None  # ... or after this many passes (the smaller wins)
    max_grad_norm: float | None = 1.0  # None: no clipping (the norm is still watched)
    precision: str = "fp32"  # "bf16" / "fp16": autocast (weights stay fp32); refused where emulated
    max_bad_steps: int = MAX_BAD_STEPS  # non-finite steps in a row before the run stops
    budget_seconds: float | None = None  # re-plan the schedule's length to end after this wall time
    log_every: int = 10
    eval_every: int = 0  # steps; 0 = only after epochs / at the end
    eval_each_epoch: bool = True
    eval_at_start: bool = False
    save_every: int = 0  # steps; 0 = only at the end / on interrupt
    keep_checkpoints: int = 3
    best_metric: str | None = None  # e.g. "accuracy": keep the best model in out_dir/best
    greater_is_better: bool = True
    time_limit: float | None = None  # seconds of wall time, then stop cleanly
    resume: bool = False
    progress: bool = True
    plot: bool = True
    save_final: bool = True
    desc: str = "train"
    extra_state: dict = field(default_factory=dict)  # stored in every checkpoint


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    total_steps: int = 0
    tokens: float = 0.0
    train_seconds: float = 0.0  # inside optimizer steps
    elapsed_seconds: float = 0.0  # wall time of the loop, evaluations and checkpoints included
    skipped_steps: int = 0  # non-finite steps skipped, in all
    bad_in_row: int = 0
    best_value: float | None = None
    best_step: int | None = None
    last_eval: dict = field(default_factory=dict)
    should_stop: bool = False
    interrupted: bool = False
    stop_reason: str = ""


def total_steps(batches: BatchSource, max_steps: int | None, epochs: float | None) -> int:
    if max_steps is None and epochs is None:
        raise BertkitError("give the training run max_steps or epochs")
    limits = []
    if max_steps is not None:
        limits.append(int(max_steps))
    if epochs is not None:
        limits.append(math.ceil(epochs * batches.steps_per_epoch()))
    return max(0, min(limits))
