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
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.hardware import autocast, grad_scaler, resolve_precision
from bertkit.log import get_logger
from bertkit.train.batches import Batch, BatchSource, IndexBatches, rows, to_device
from bertkit.train.budget import BudgetPlanner
from bertkit.train.checkpointing import (
    apply_checkpoint,
    capture_rng,
    latest_checkpoint,
    newest_readable,
    save_checkpoint,
)
from bertkit.train.curves import JsonlLog, plot_log
from bertkit.train.distributed import DistEnv, wrap_model
from bertkit.train.lock import RunLock
from bertkit.train.window import Window

__all__ = ["CHECKPOINT_DIR", "BatchSource", "IndexBatches", "Objective", "TrainConfig", "TrainState", "train"]

logger = get_logger(__name__)

CHECKPOINT_DIR = "checkpoints"  # inside the out folder: resume state, the last K steps
MAX_BAD_STEPS = 10  # non-finite steps in a row that end a run
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


def resume_point(out_dir: str | os.PathLike, resume: bool) -> Path | None:
    """The checkpoint a run in out_dir would continue from (the newest one), else None."""
    return latest_checkpoint(Path(out_dir) / CHECKPOINT_DIR) if resume else None


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
    run = _Run(model, optimizer, scheduler, batches, config, objective or Objective(), eval_fn, callbacks, env, save_fn)
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


class _Interrupt:
    """First Ctrl-C (or SIGTERM, as schedulers send before preempting): finish the step, save,
    stop. A second one: the usual KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.hit = False
        self._old: dict = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)


class _Run:
    """What the steps of one `train()` call share: the model and its optimizer, the state, the log."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        batches: BatchSource,
        config: TrainConfig,
        objective: Objective,
        eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None,
        callbacks: Sequence[Any],
        env: DistEnv | None,
        save_fn: Callable[[torch.nn.Module, Path], None] | None,
    ):
        self.env = env or DistEnv()
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.config, self.objective, self.eval_fn = config, objective, eval_fn
        self.callbacks, self.save_fn = callbacks, save_fn
        self.out = Path(config.out_dir)
        self.precision = resolve_precision(config.precision, self.env.device)
        self.scaler = grad_scaler(self.env.device, self.precision)
        self.steps_per_epoch = batches.steps_per_epoch()
        if self.steps_per_epoch == 0:
            raise BertkitError("the training data yields no batch; add data or lower the batch size")
        self.state = TrainState(total_steps=total_steps(batches, config.max_steps, config.epochs))
        self.planner = None
        if config.budget_seconds:
            self.planner = BudgetPlanner(config.budget_seconds, self.state.total_steps, self.env)
        self.window = Window()
        self.bar: Any = None
        self.log: JsonlLog | None = None
        self.last_saved = self.last_eval = -1
        self.started = time.perf_counter()
        self.elapsed_before = 0.0

    @contextlib.contextmanager
    def session(self) -> Iterator[_Interrupt]:
        lock = RunLock(self.out) if self.env.is_main else contextlib.nullcontext()
        try:
            with lock, _Interrupt() as interrupt:
                yield interrupt
        finally:
            if self.bar is not None:
                self.bar.close()

    def begin(self) -> None:
        state, config = self.state, self.config
        if config.resume:
            ckpt = newest_readable(self.out / CHECKPOINT_DIR, LOOP_FIELDS)
            if ckpt is not None:
                saved = apply_checkpoint(
                    ckpt, self.model, self.optimizer, self.scheduler, self.scaler, rank=self.env.rank
                )
                for key in LOOP_FIELDS:
                    setattr(state, key, saved["loop"][key])
                logger.info(f"resumed from {ckpt.path} (step {state.step})")
        self.elapsed_before = state.elapsed_seconds
        self.last_saved = state.step
        if self.env.is_main:
            self.log = JsonlLog(self.out / "log.jsonl", resume_step=state.step if config.resume else None)
            if config.progress:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=state.total_steps, initial=state.step, desc=config.desc, unit="step")
        self.ddp = wrap_model(self.model, self.env)
        self.model.train()
        _call(self.callbacks, "on_train_begin", state)
        if config.eval_at_start and state.step == 0:
            self.evaluate()

    # one optimizer step ------------------------------------------------------------------------

    def step(self, micro: list[Batch]) -> None:
        """One optimizer step over this rank's micro-batches."""
        start = time.perf_counter()
        totals = self._global_counts(micro)
        step_loss = 0.0
        for i, batch in enumerate(micro):
            self.window.tokens += self.objective.num_tokens(batch)
            batch = to_device(batch, self.env.device)
            with self._no_sync(last=i == len(micro) - 1):
                with autocast(self.env.device, self.precision):
                    sums, metrics = self.objective.loss(self.ddp, batch)
                    loss = sum(sums[k].float() / max(totals[k], 1e-12) for k in sums)
                # DDP averages gradients over ranks; each term already is its share of the global mean
                scaled = loss * self.env.world_size
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            step_loss += float(loss.detach())
            self.window.add_batch(sums, metrics)
        self.window.add_counts(totals, self.env.world_size)
        norm = self._grad_norm()
        if self._finite(step_loss, norm):
            self._update()
            self.window.grad_norms.append(norm)
        else:
            self._skip(step_loss, norm)
        self.optimizer.zero_grad(set_to_none=True)
        self.window.step_losses.append(step_loss)
        seconds = time.perf_counter() - start
        self.window.seconds += seconds
        self.window.steps += 1
        self.state.train_seconds += seconds
        self.state.step += 1
        self.state.batch_in_epoch += 1

    def _global_counts(self, micro: list[Batch]) -> dict[str, float]:
        """Each loss term's denominator over the whole step: all micro-batches, all ranks."""
        local: dict[str, float] = {}
        for b in micro:
            for k, v in self.objective.counts(b).items():
                local[k] = local.get(k, 0.0) + float(v)
        keys = sorted(local)
        return dict(zip(keys, self.env.all_reduce([local[k] for k in keys])))

    def _no_sync(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """DDP all-reduces the gradients on the last micro-batch of a step only."""
        if self.env.distributed and not last:
            return self.ddp.no_sync()
        return contextlib.nullcontext()

    def _grad_norm(self) -> float:
        """The gradients' global norm, after unscaling (fp16) and clipping to max_grad_norm."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.config.max_grad_norm:
            return float(torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm))
        if hasattr(torch.nn.utils, "get_total_norm"):
            return float(torch.nn.utils.get_total_norm([p.grad for p in params]))
        return float(torch.nn.utils.clip_grad_norm_(params, math.inf))

    def _finite(self, loss: float, norm: float) -> bool:
        """Whether to apply this step, the same answer on every rank. With a gradient scaler an
        overflowing gradient is the scaler's to skip (it lowers the scale); a bad loss is ours."""
        bad = not math.isfinite(loss) or (not math.isfinite(norm) and self.scaler is None)
        return not self.env.any(bad)

    def _update(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.state.bad_in_row = 0

    def _skip(self, loss: float, norm: float) -> None:
        """Leave weights and optimizer state as they were; the schedule still moves on with the data."""
        state = self.state
        if self.scaler is not None:
            self.scaler.update()  # the scaler saw the overflow in unscale_ and lowers its scale
        if self.scheduler is not None:
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": on purpose
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
        state.bad_in_row += 1
        state.skipped_steps += 1
        self.window.skipped += 1
        logger.warning(
            f"step {state.step + 1}: non-finite loss ({loss:.4g}) or gradient norm ({norm:.4g}); "
            f"optimizer step skipped ({state.bad_in_row} in a row; the run stops after {self.config.max_bad_steps})"
        )

    # between steps -----------------------------------------------------------------------------

    def after_step(self, interrupted: bool) -> None:
        state, config = self.state, self.config
        state.elapsed_seconds = self.elapsed_before + time.perf_counter() - self.started
        record = None
        if state.step % config.log_every == 0 or state.step == state.total_steps:
            record = self.write_record()
        _call(self.callbacks, "on_step_end", state, record)
        if self.bar is not None:
            self.bar.update(1)
        if config.eval_every and state.step % config.eval_every == 0:
            self.evaluate()
        if config.save_every and state.step % config.save_every == 0 and state.step < state.total_steps:
            self.checkpoint()
        if self.planner is not None:
            planned = self.planner.plan(state.step, state.elapsed_seconds, self.scheduler)
            if planned is not None:
                state.total_steps = planned
                if self.bar is not None:
                    self.bar.total = planned
        self._decide_stop(interrupted)

    def _decide_stop(self, interrupted: bool) -> None:
        state, config = self.state, self.config
        late = config.time_limit is not None and time.perf_counter() - self.started >= config.time_limit
        spent = config.budget_seconds is not None and state.elapsed_seconds >= config.budget_seconds
        poisoned = state.bad_in_row > config.max_bad_steps
        flags = self.env.all_reduce([interrupted, late or spent, state.should_stop, poisoned])
        hit, late, asked, poisoned = (x > 0 for x in flags)
        if hit or late or asked or poisoned:
            state.should_stop = True
            state.interrupted = hit
            reasons = [(poisoned, NON_FINITE), (hit, "interrupted"), (late, "time limit"), (asked, "stopped")]
            state.stop_reason = next(name for flag, name in reasons if flag)

    def write_record(self) -> dict[str, Any]:
        record = self.window.flush(self.env, self.state, self.steps_per_epoch, self.optimizer)
        self.state.tokens += record.get("tokens", 0)
        if self.log is not None:
            self.log.write(record)
        if self.bar is not None:
            shown = ("loss", "mlm_acc", "nsp_acc", "accuracy", "lr")
            self.bar.set_postfix({k: f"{record[k]:.3g}" for k in shown if k in record}, refresh=False)
        return record

    def evaluate(self) -> None:
        state, config = self.state, self.config
        self.last_eval = state.step
        if self.eval_fn is None:
            return
        metrics: dict[str, float] = {}
        if self.env.is_main:
            start = time.perf_counter()
            self.model.eval()
            with torch.no_grad(), autocast(self.env.device, self.precision):
                metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
            self.model.train()
            if self.planner is not None:
                self.planner.eval_took(time.perf_counter() - start)
            state.last_eval = metrics
            epoch = round(state.epoch + state.batch_in_epoch / self.steps_per_epoch, 4)
            if self.log is not None:
                self.log.write({"step": state.step, "epoch": epoch, **{f"eval_{k}": v for k, v in metrics.items()}})
            logger.info(f"eval @ step {state.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            self._keep_best(metrics)
            if config.plot:
                plot_log(self.out / "log.jsonl", self.out / "curves.png", title=config.desc)
        _call(self.callbacks, "on_eval", state, metrics)

    def _keep_best(self, metrics: dict[str, float]) -> None:
        config, state = self.config, self.state
        if not config.best_metric:
            return
        name = config.best_metric.removeprefix("eval_")
        if name not in metrics:
            raise BertkitError(f"best_metric {config.best_metric!r} is not among the eval metrics {sorted(metrics)}")
        value = metrics[name]
        if not math.isfinite(value):  # a NaN never counts as the best, nor blocks a later real value
            return
        old = state.best_value
        if old is None or not math.isfinite(old) or (value > old if config.greater_is_better else value < old):
            state.best_value, state.best_step = value, state.step
            if self.save_fn is not None:
                self.save_fn(self.model, self.out / "best")

    def checkpoint(self) -> None:
        rng = self.env.gather_objects(capture_rng())
        self.last_saved = self.state.step
        if self.env.is_main:
            loop_state = {k: getattr(self.state, k) for k in LOOP_FIELDS}
            save_checkpoint(
                self.out / CHECKPOINT_DIR,
                self.state.step,
                self.model,
                self.optimizer,
                self.scheduler,
                {"loop": loop_state, "extra": self.config.extra_state},
                rng,
                keep=self.config.keep_checkpoints,
                scaler=self.scaler,
            )

    def end_epoch(self) -> None:
        state = self.state
        state.epoch += 1
        state.batch_in_epoch = 0
        _call(self.callbacks, "on_epoch_end", state)
        if self.config.epochs is not None and self.config.eval_each_epoch and self.last_eval != state.step:
            self.evaluate()

    def end(self) -> None:
        state, config = self.state, self.config
        failed = state.stop_reason == NON_FINITE
        if self.window.steps:  # a partial logging window at a stop
            self.write_record()
        if state.step != self.last_saved or state.should_stop:
            self.checkpoint()
        if not state.interrupted and not failed and self.last_eval != state.step:
            self.evaluate()
        if self.env.is_main:
            if config.plot and (self.out / "log.jsonl").stat().st_size:
                plot_log(self.out / "log.jsonl", self.out / "curves.png", title=config.desc)
            if self.save_fn is not None and config.save_final and not state.interrupted and not failed:
                self.save_fn(self.model, self.out)
            if state.interrupted:
                logger.info(f"stopped at step {state.step}; checkpoint saved in {self.out / CHECKPOINT_DIR}")
        _call(self.callbacks, "on_train_end", state)
        self.env.barrier()
        if failed:
            raise BertkitError(
                f"stopped at step {state.step}: more than {config.max_bad_steps} steps in a row had a non-finite loss "
                f"or gradient norm, and were skipped; the newest checkpoint in {self.out / CHECKPOINT_DIR} holds the "
                "last finite weights: lower the learning rate, check the data, or use --precision fp32"
            )


def _call(callbacks: Sequence[Any], name: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)
