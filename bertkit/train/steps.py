"""One training run's moving parts: what `train()`'s steps share, and what each of them does.

bertkit.train.loop holds the loop itself and its contract; `Run` here does one optimizer step
(`step`), the bookkeeping after it (`after_step`: log, evaluate, checkpoint, budget, stop?), and
the start and the end of a run.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from bertkit.errors import BertkitError
from bertkit.hardware import autocast, grad_scaler, resolve_precision
from bertkit.log import get_logger
from bertkit.train.batches import Batch, BatchSource, to_device
from bertkit.train.budget import BudgetPlanner
from bertkit.train.checkpointing import apply_checkpoint, capture_rng, newest_readable, save_checkpoint
from bertkit.train.config import (
    CHECKPOINT_DIR,
    LOOP_FIELDS,
    NON_FINITE,
    Objective,
    TrainConfig,
    TrainState,
    total_steps,
)
from bertkit.train.curves import JsonlLog, plot_log
from bertkit.train.distributed import DistEnv, wrap_model
from bertkit.train.lock import RunLock
from bertkit.train.window import Window

logger = get_logger(__name__)


class Interrupt:
    """First Ctrl-C (or SIGTERM, as schedulers send before preempting): finish the step, save,
    stop. A second one: the usual KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.hit = False
        self._old: dict = {}

    def __enter__(self) -> Interrupt:
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


class Run:
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
        self.ddp: torch.nn.Module = model  # DDP around it once the run begins with several ranks
        self.bar: Any = None
        self.log: JsonlLog | None = None
        self.last_saved = self.last_eval = -1
        self.started = time.perf_counter()
        self.elapsed_before = 0.0

    @contextlib.contextmanager
    def session(self) -> Iterator[Interrupt]:
        lock = RunLock(self.out) if self.env.is_main else contextlib.nullcontext()
        try:
            with lock, Interrupt() as interrupt:
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
                    loss = torch.stack([sums[k].float() / max(totals[k], 1e-12) for k in sums]).sum()
                # DDP averages gradients over ranks; each term already is its share of the global mean
                scaled = loss * self.env.world_size
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            step_loss += float(loss.detach())
            self.window.add_batch(sums, metrics)
        self.window.add_counts(totals, self.env.world_size)
        norm, clip_divisor = self._grad_norm()
        if self._finite(step_loss, norm):
            self._update(clip_divisor)
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
            return self.ddp.no_sync()  # type: ignore[operator]  # DistributedDataParallel's, typed loosely
        return contextlib.nullcontext()

    def _grad_norm(self) -> tuple[float, torch.Tensor | None]:
        """The gradients' global norm, after unscaling (fp16) and clipping to max_grad_norm, and
        the divisor a fused Adam(W) still has to apply (None: nothing left to clip).

        A fused Adam(W) clips inside its own step: `_update` hands it the divisor as `grad_scale`
        (the contract GradScaler uses), which it applies while reading each gradient, sparing a
        read and a write of every gradient that multiplying them here would cost."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.config.max_grad_norm
        get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)  # torch >= 2.6
        in_step = self.scaler is None and getattr(self.optimizer, "_step_supports_amp_scaling", False)
        if get_total_norm is None or (max_norm and not in_step):
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm or math.inf)), None
        norm = get_total_norm([p.grad for p in params])
        clip = bool(max_norm) and bool(norm > max_norm)  # clip_grad_norm_'s factor max_norm / norm, as a divisor
        return float(norm), norm / max_norm if clip else None

    def _finite(self, loss: float, norm: float) -> bool:
        """Whether to apply this step, the same answer on every rank. With a gradient scaler an
        overflowing gradient is the scaler's to skip (it lowers the scale); a bad loss is ours."""
        bad = not math.isfinite(loss) or (not math.isfinite(norm) and self.scaler is None)
        return not self.env.any(bad)

    def _update(self, clip_divisor: torch.Tensor | None = None) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif clip_divisor is not None:
            self.optimizer.grad_scale = clip_divisor  # type: ignore[attr-defined]  # read by fused Adam(W)
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.grad_scale  # type: ignore[attr-defined]
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
