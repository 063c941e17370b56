"""The one training loop: pretraining and every fine-tuning task run through `train()`.

What a job plugs in
-------------------
    state = train(model, optimizer, scheduler, batches, TrainConfig(out_dir=..., epochs=3),
                  task=None, eval_fn=evaluate, callbacks=[...], env=env, save_fn=save)

* model      an nn.Module already on `env.device`. With the default task its forward takes the
             batch as keyword arguments and returns an object with `.loss` (a mean over the
             batch), as every bertkit model does when given labels.
* optimizer / scheduler   usually `optim.build_optimizer` + `optim.linear_schedule`; the
             scheduler is stepped once per optimizer step (pass None for a constant lr).
* batches    a `BatchSource`: `steps_per_epoch()` and `epoch(e, start)` yielding, for each
             optimizer step, the list of micro-batches (dicts of tensors) this rank runs.
             `IndexBatches(plan, collate, grad_accum, rank, world_size)` builds one from a
             per-epoch plan of global batches (lists of example indices) and a collate function;
             it cuts every global batch into world_size x grad_accum micro-batches, so one
             process with accumulation and N processes see exactly the same global batch.
* task       how to get a loss: `counts(batch)` (each loss term's denominator: rows, tokens,
             masked tokens) and `loss(model, batch) -> (sums, metrics)`; `sums` maps the same
             term names to their SUM over the micro-batch (a tensor with grad), `metrics` maps
             names to (sum, count) pairs to log as sum/count. The loop all-reduces the counts of
             the whole step (all micro-batches, all ranks) first and divides each term by its
             global count, so the gradient is that of the mean over the global batch, whatever the
             accumulation or process count. The default `Task` uses `model(**batch).loss` weighted by the batch's rows.
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
gradient clipping (max_grad_norm, default 1.0), optional bf16 autocast, a tqdm bar, records in
out_dir/log.jsonl (plotted to out_dir/curves.png at each evaluation and at the end), checkpoints
every `save_every` steps in out_dir/checkpoints (atomic, newest `keep_checkpoints` kept), exact
resume (`resume=True`: weights, optimizer, schedule, RNG streams and the data position), and a
clean stop with a checkpoint on Ctrl-C / SIGTERM, on `time_limit` seconds, or when a callback asks.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bertkit.errors import BertkitError
from bertkit.train.checkpointing import capture_rng, latest_checkpoint, load_checkpoint, save_checkpoint
from bertkit.train.curves import JsonlLog, plot_log
from bertkit.train.distributed import DistEnv, wrap_model

Batch = dict[str, Any]

CHECKPOINT_DIR = "checkpoints"  # inside the out folder: resume state, the last K steps


def resume_point(out_dir: str | os.PathLike, resume: bool) -> Path | None:
    """The checkpoint a run in out_dir continues from: the newest one with resume, else none."""
    return latest_checkpoint(Path(out_dir) / CHECKPOINT_DIR) if resume else None


# what plugs in ------------------------------------------------------------------------------------


class BatchSource(Protocol):
    def steps_per_epoch(self) -> int: ...
    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[Batch]]: ...


class IndexBatches:
    """Per-epoch plan of global batches -> this rank's micro-batches (see the module docstring).

    plan(epoch) -> sequence of global batches (each a sequence of example indices);
    collate(indices, epoch) -> a batch dict of tensors. A global batch with fewer examples than
    world_size x grad_accum (a tiny tail) is skipped, so every rank runs the same number of steps.
    """

    def __init__(
        self,
        plan: Callable[[int], Sequence[Sequence[int]]],
        collate: Callable[[Sequence[int], int], Batch],
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ):
        if grad_accum < 1:
            raise BertkitError(f"grad_accum must be at least 1, got {grad_accum}")
        self.plan, self.collate = plan, collate
        self.grad_accum, self.rank, self.world_size = grad_accum, rank, world_size
        self._cache: tuple[int, list] | None = None

    def _steps(self, epoch: int) -> list:
        if self._cache is None or self._cache[0] != epoch:
            parts = self.grad_accum * self.world_size
            self._cache = (epoch, [b for b in self.plan(epoch) if len(b) >= parts])
        return self._cache[1]

    def steps_per_epoch(self) -> int:
        return len(self._steps(0))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[Batch]]:
        parts = self.grad_accum * self.world_size
        for global_batch in self._steps(epoch)[start:]:
            pieces = np.array_split(np.asarray(global_batch), parts)
            mine = pieces[self.rank * self.grad_accum : (self.rank + 1) * self.grad_accum]
            yield [self.collate(p.tolist(), epoch) for p in mine]


def rows(batch: Batch) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    raise BertkitError("a batch must hold at least one tensor with a batch dimension")


class Task:
    """The default: `model(**batch).loss` is a mean over the batch's rows."""

    def counts(self, batch: Batch) -> dict[str, float]:
        return {"loss": float(rows(batch))}

    def loss(
        self, model: torch.nn.Module, batch: Batch
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[float, float]]]:
        out = model(**batch)
        if getattr(out, "loss", None) is None:
            raise BertkitError("the model returned no .loss; pass labels in the batch or give train() a task")
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
    max_grad_norm: float | None = 1.0
    bf16: bool = False  # autocast matmuls to bfloat16 (weights stay fp32)
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
    train_seconds: float = 0.0
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
        spe = batches.steps_per_epoch()
        if spe == 0:
            raise BertkitError("the training data yields no batch; add data or lower the batch size")
        limits.append(math.ceil(epochs * spe))
    return max(0, min(limits))


# the loop -----------------------------------------------------------------------------------------


class _Interrupt:
    """First Ctrl-C (or SIGTERM, as schedulers send before preempting): finish the step, save,
    stop. A second one: the usual KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.hit = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _call(callbacks: Sequence[Any], name: str, *args) -> None:
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(*args)


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batches: BatchSource,
    config: TrainConfig,
    task: Task | None = None,
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    callbacks: Sequence[Any] = (),
    env: DistEnv | None = None,
    save_fn: Callable[[torch.nn.Module, Path], None] | None = None,
) -> TrainState:
    """Run optimizer steps until max_steps / epochs / time_limit / Ctrl-C; see the module docstring."""
    env = env or DistEnv()
    task = task or Task()
    out = Path(config.out_dir)
    ckpt_dir = out / CHECKPOINT_DIR
    state = TrainState(total_steps=total_steps(batches, config.max_steps, config.epochs))
    steps_per_epoch = batches.steps_per_epoch()
    if steps_per_epoch == 0:
        raise BertkitError("the training data yields no batch; add data or lower the batch size")

    resume_from = resume_point(out, config.resume)
    if resume_from is not None:
        saved = load_checkpoint(resume_from, model, optimizer, scheduler, rank=env.rank)
        for key in ("step", "epoch", "batch_in_epoch", "tokens", "train_seconds", "best_value", "best_step"):
            setattr(state, key, saved["loop"][key])
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        log = JsonlLog(out / "log.jsonl", resume_step=state.step if config.resume else None)
        if resume_from is not None:
            print(f"resumed from {resume_from} (step {state.step})", flush=True)
    ddp = wrap_model(model, env)
    model.train()

    def autocast():
        return torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=config.bf16)

    bar = None
    if env.is_main and config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=state.total_steps, initial=state.step, desc=config.desc, unit="step", dynamic_ncols=True)

    window = _Window()
    started = time.perf_counter()

    def evaluate() -> None:
        if eval_fn is None:
            return
        metrics: dict[str, float] = {}
        if env.is_main:
            model.eval()
            with torch.no_grad(), autocast():
                metrics = {k: float(v) for k, v in eval_fn(model).items()}
            model.train()
            state.last_eval = metrics
            record = {
                "step": state.step,
                "epoch": round(state.epoch + state.batch_in_epoch / steps_per_epoch, 4),
                **{f"eval_{k}": v for k, v in metrics.items()},
            }
            log.write(record)
            if bar is not None:
                bar.write(
                    "eval @ step {}: {}".format(state.step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                )
            _keep_best(metrics)
            if config.plot:
                plot_log(out / "log.jsonl", out / "curves.png", title=config.desc)
        _call(callbacks, "on_eval", state, metrics)

    def _keep_best(metrics: dict[str, float]) -> None:
        if not config.best_metric:
            return
        name = config.best_metric[5:] if config.best_metric.startswith("eval_") else config.best_metric
        if name not in metrics:
            raise BertkitError(f"best_metric {config.best_metric!r} is not among the eval metrics {sorted(metrics)}")
        value = metrics[name]
        better = state.best_value is None or (
            value > state.best_value if config.greater_is_better else value < state.best_value
        )
        if better:
            state.best_value, state.best_step = value, state.step
            if save_fn is not None:
                save_fn(model, out / "best")

    def checkpoint() -> None:
        rng = env.gather_objects(capture_rng())
        if env.is_main:
            loop_state = {
                k: getattr(state, k)
                for k in ("step", "epoch", "batch_in_epoch", "tokens", "train_seconds", "best_value", "best_step")
            }
            save_checkpoint(
                ckpt_dir,
                state.step,
                model,
                optimizer,
                scheduler,
                {"loop": loop_state, "extra": config.extra_state},
                rng,
                keep=config.keep_checkpoints,
            )

    _call(callbacks, "on_train_begin", state)
    if config.eval_at_start and state.step == 0:
        evaluate()
    last_saved = state.step
    last_eval = state.step if config.eval_at_start else -1
    with _Interrupt() as interrupt:
        while state.step < state.total_steps and not state.should_stop:
            finished_epoch = True
            for micro in batches.epoch(state.epoch, state.batch_in_epoch):
                t0 = time.perf_counter()
                _step(ddp, model, optimizer, scheduler, micro, task, env, config, autocast, window)
                state.step += 1
                state.batch_in_epoch += 1
                dt = time.perf_counter() - t0
                state.train_seconds += dt
                window.seconds += dt
                record = None
                if state.step % config.log_every == 0 or state.step == state.total_steps:
                    record = window.flush(env, state, steps_per_epoch, optimizer)
                    state.tokens += record.get("tokens", 0)
                    if env.is_main:
                        log.write(record)
                        if bar is not None:
                            bar.set_postfix(
                                {
                                    k: f"{record[k]:.3g}"
                                    for k in record
                                    if k in ("loss", "mlm_acc", "nsp_acc", "accuracy", "lr")
                                },
                                refresh=False,
                            )
                _call(callbacks, "on_step_end", state, record)
                if bar is not None:
                    bar.update(1)
                if config.eval_every and state.step % config.eval_every == 0:
                    evaluate()
                    last_eval = state.step
                if config.save_every and state.step % config.save_every == 0 and state.step < state.total_steps:
                    checkpoint()
                    last_saved = state.step
                over_time = config.time_limit is not None and time.perf_counter() - started >= config.time_limit
                hit, late, asked = (x > 0 for x in env.all_reduce([interrupt.hit, over_time, state.should_stop]))
                if hit or late or asked:
                    state.should_stop = True
                    state.interrupted = hit
                    state.stop_reason = "interrupted" if hit else "time limit" if late else "stopped"
                if state.step >= state.total_steps or state.should_stop or state.batch_in_epoch >= steps_per_epoch:
                    finished_epoch = state.batch_in_epoch >= steps_per_epoch
                    break
            if finished_epoch:
                state.epoch += 1
                state.batch_in_epoch = 0
                _call(callbacks, "on_epoch_end", state)
                if config.epochs is not None and config.eval_each_epoch and last_eval != state.step:
                    evaluate()
                    last_eval = state.step
        if window.steps:  # a partial logging window at a stop
            record = window.flush(env, state, steps_per_epoch, optimizer)
            state.tokens += record.get("tokens", 0)
            if env.is_main:
                log.write(record)
        if state.step != last_saved or state.should_stop:
            checkpoint()
        if not state.interrupted and last_eval != state.step:
            evaluate()
    if bar is not None:
        bar.close()
    if env.is_main:
        if config.plot and (out / "log.jsonl").stat().st_size:
            plot_log(out / "log.jsonl", out / "curves.png", title=config.desc)
        if save_fn is not None and config.save_final and not state.interrupted:
            save_fn(model, out)
        if state.interrupted:
            print(f"stopped at step {state.step}; checkpoint saved in {ckpt_dir} (continue with --resume)", flush=True)
    _call(callbacks, "on_train_end", state)
    env.barrier()
    return state


def _step(
    ddp,
    model,
    optimizer,
    scheduler,
    micro: list[Batch],
    task: Task,
    env: DistEnv,
    config: TrainConfig,
    autocast,
    window: _Window,
) -> None:
    """One optimizer step over this rank's micro-batches."""
    local = {}
    for b in micro:
        for k, v in task.counts(b).items():
            local[k] = local.get(k, 0.0) + float(v)
    keys = sorted(local)
    totals = dict(zip(keys, env.all_reduce([local[k] for k in keys])))
    step_loss = 0.0
    for i, batch in enumerate(micro):
        window.tokens += task.num_tokens(batch)
        batch = _to_device(batch, env.device)
        sync = i == len(micro) - 1
        ctx = ddp.no_sync() if env.distributed and not sync else contextlib.nullcontext()
        with ctx:
            with autocast():
                sums, metrics = task.loss(ddp, batch)
                loss = sum(sums[k].float() / max(totals[k], 1e-12) for k in sums)
            # DDP averages gradients over ranks; the terms are already global means' shares
            (loss * env.world_size).backward()
        step_loss += float(loss.detach())
        for k, v in sums.items():
            window.add(k, float(v.detach()), 0.0)
        for k, (s, c) in metrics.items():
            window.add(k, float(s), float(c))
    for k, total in totals.items():  # each term's global denominator, once over all ranks
        window.add(k, 0.0, total / env.world_size)
    window.step_losses.append(step_loss)
    if config.max_grad_norm:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        window.grad_norms.append(float(norm))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    window.steps += 1


class _Window:
    """Sums over the steps since the last log record, reduced over ranks when flushed."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, list[float]] = {}
        self.step_losses: list[float] = []
        self.grad_norms: list[float] = []
        self.tokens = 0.0
        self.seconds = 0.0
        self.steps = 0

    def add(self, name: str, value: float, count: float) -> None:
        s = self.sums.setdefault(name, [0.0, 0.0])
        s[0] += value
        s[1] += count

    def flush(self, env: DistEnv, state: TrainState, steps_per_epoch: int, optimizer) -> dict[str, Any]:
        names = sorted(self.sums)
        flat = [x for n in names for x in self.sums[n]] + [sum(self.step_losses), self.tokens]
        flat = env.all_reduce(flat)
        record: dict[str, Any] = {
            "step": state.step,
            "epoch": round(state.epoch + state.batch_in_epoch / steps_per_epoch, 4),
        }
        for i, n in enumerate(names):
            if n == "loss":
                continue
            s, c = flat[2 * i], flat[2 * i + 1]
            if c > 0:
                record[n] = s / c
        steps = max(self.steps, 1)
        record["loss"] = flat[-2] / steps
        record["lr"] = optimizer.param_groups[0]["lr"]
        if self.grad_norms:
            record["grad_norm"] = sum(self.grad_norms) / len(self.grad_norms)
        record["tokens"] = flat[-1]
        record["tokens_per_s"] = flat[-1] / self.seconds if self.seconds > 0 else 0.0
        record["elapsed_s"] = round(state.train_seconds, 2)
        self.reset()
        return record
