"""The one training loop: pretraining and every fine-tuning task run through `train()`.

What a job plugs in
-------------------
    state = train(model, optimizer, scheduler, batches, TrainConfig(out_dir=..., epochs=3),
                  objective=None, eval_fn=evaluate, callbacks=[...], env=env, save_fn=save)

* model      an nn.Module already on `env.device`. With the default objective its forward takes
             the batch as keyword arguments and returns an object with `.loss` (a mean over the
             batch), as every bertkit model does when given labels.
* optimizer / scheduler   usually `optim.build_optimizer` + `optim.linear_schedule`; the
             scheduler is stepped once per optimizer step (pass None for a constant lr).
* batches    a `BatchSource` (bertkit.train.batches): `steps_per_epoch()` and `epoch(e, start)`
             yielding, for each optimizer step, the list of micro-batches this rank runs;
             `IndexBatches(plan, collate, grad_accum, rank, world_size)` builds one.
* objective  how to get a loss: `counts(batch)` (each loss term's denominator: rows, tokens,
             masked tokens) and `loss(model, batch) -> (sums, metrics)`; `sums` maps the same
             term names to their SUM over the micro-batch (a tensor with grad), `metrics` maps
             names to (sum, count) pairs to log as sum/count. The loop all-reduces the counts of
             the whole step (all micro-batches, all ranks) first and divides each term by its
             global count, so the gradient is that of the mean over the global batch, whatever the
             accumulation or process count. The default `Objective` uses `model(**batch).loss`.
* eval_fn    `eval_fn(model) -> {name: float}`, run on rank 0 in eval mode under no_grad every
             `eval_every` steps, after each epoch (epoch-based runs) and at the end; logged as
             eval_<name>. With `best_metric` set, each improvement saves `save_fn(model, out/best)`.
* callbacks  objects with any of on_train_begin(state), on_step_end(state, record) (every
             step; record is the log record on logging steps, else None), on_eval(state, metrics)
             (metrics are {} on ranks > 0), on_epoch_end(state), on_train_end(state); setting
             `state.should_stop = True` ends the run after the current step (with a checkpoint).
* env        a `distributed.DistEnv` (default: one process on the CPU). The loop wraps the model
             in DDP when env.world_size > 1; only rank 0 logs, plots and saves.
* save_fn    `save_fn(model, folder)` writes a usable model (e.g. save_pretrained + tokenizer);
             called for out/best and, at the end, for out_dir itself.

What the loop does
------------------
Optimizer steps with gradient accumulation (DDP's all-reduce only on the last micro-batch),
gradient clipping, autocast in `precision` (bf16; fp16 with a gradient scaler whose state is
checkpointed), a tqdm bar, records in out_dir/log.jsonl (plotted to out_dir/curves.png),
checkpoints every `save_every` steps (bertkit.train.checkpointing), exact resume (`resume=True`:
weights, optimizer, schedule, scaler, RNG streams and the data position; a damaged newest
checkpoint is skipped for the one before), a lock so that one folder holds one run, and a clean
stop with a checkpoint on Ctrl-C / SIGTERM, on `time_limit`, or when a callback asks.

A step whose loss or gradient norm is not finite changes nothing: the optimizer step is skipped
and counted ("skipped" in the log); more than `max_bad_steps` of them in a row stop the run with
a checkpoint of the last finite weights and a BertkitError. With `budget_seconds` the schedule's
length is re-planned from the measured step time so that it ends at the budget (bertkit.train.budget).

What each line of `train()` does in detail lives in bertkit.train.steps (`Run`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bertkit.train.batches import BatchSource, IndexBatches
from bertkit.train.checkpointing import latest_checkpoint
from bertkit.train.config import (
    CHECKPOINT_DIR,
    LOOP_FIELDS,
    MAX_BAD_STEPS,
    Objective,
    TrainConfig,
    TrainState,
)
from bertkit.train.distributed import DistEnv
from bertkit.train.steps import Run

__all__ = [
    "CHECKPOINT_DIR",
    "LOOP_FIELDS",
    "MAX_BAD_STEPS",
    "BatchSource",
    "IndexBatches",
    "Objective",
    "TrainConfig",
    "TrainState",
    "resume_point",
    "train",
]


def resume_point(out_dir: str | os.PathLike, resume: bool) -> Path | None:
    """The checkpoint a run in out_dir would continue from (the newest one), else None."""
    return latest_checkpoint(Path(out_dir) / CHECKPOINT_DIR) if resume else None


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batches: BatchSource,
    config: TrainConfig,
    objective: Objective | None = None,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    callbacks: Sequence[Any] = (),
    env: DistEnv | None = None,
    save_fn: Callable[[torch.nn.Module, Path], None] | None = None,
) -> TrainState:
    """Run optimizer steps until max_steps / epochs / budget / time_limit / Ctrl-C; see the module docstring."""
    run = Run(model, optimizer, scheduler, batches, config, objective or Objective(), eval_fn, callbacks, env, save_fn)
    state, per_epoch = run.state, run.steps_per_epoch
    with run.session() as interrupt:  # the folder's lock, Ctrl-C handling, the progress bar
        run.begin()  # resume from the newest readable checkpoint; open the log
        while state.step < state.total_steps and not state.should_stop:
            for micro in batches.epoch(state.epoch, state.batch_in_epoch):
                run.step(micro)  # forward + backward per micro-batch, clip, optimizer step (or skip a non-finite one)
                run.after_step(interrupt.hit)  # log, evaluate, checkpoint, re-plan the budget, decide to stop
                if state.should_stop or state.step >= state.total_steps or state.batch_in_epoch >= per_epoch:
                    break
            if state.batch_in_epoch >= per_epoch:  # a full pass over the data
                run.end_epoch()
        run.end()  # the last records, a checkpoint, the final evaluation and model
    return state
