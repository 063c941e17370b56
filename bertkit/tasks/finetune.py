"""Fine-tune: task data + a pretrained model -> the shared training loop -> the best model on dev.

The tasks plug in what differs (reader, features, head, metric: `adapters.TaskAdapter`); the
optimiser, schedule and loop are the pretraining ones (bertkit.train). A run checks everything
first — settings, device and precision, files, labels, columns, model, tokenizer, output folder —
and writes nothing until all of it is valid; then it evaluates on the dev data after every epoch
(and every N steps if asked), keeps the best model, checkpoints for `resume`, and logs the curves.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.constants import FINETUNE_SETTINGS_FILE
from bertkit.data.batching import length_grouped_plan
from bertkit.errors import BertkitError
from bertkit.files import atomic_write_json, require_new_folder
from bertkit.hardware import resolve_device, resolve_precision
from bertkit.log import get_logger
from bertkit.tasks import frozen, outputs
from bertkit.tasks.adapters import TaskAdapter, get_task
from bertkit.tasks.callbacks import EarlyStopping, History, TensorBoard, best_index, require_tensorboard
from bertkit.tasks.evaluate import evaluate, headline, saved_record, score
from bertkit.tasks.examples import DataSource
from bertkit.tasks.features import pad_batch
from bertkit.tasks.prepare import Prepared, prepare
from bertkit.tasks.settings import ADAM_BETAS, ADAM_EPS, FinetuneSettings
from bertkit.train.distributed import DistEnv
from bertkit.train.loop import CHECKPOINT_DIR, IndexBatches, TrainConfig, resume_point, train
from bertkit.train.optim import build_optimizer, linear_schedule, warmup_from_ratio

__all__ = ["FinetuneSettings", "Prepared", "evaluate", "finetune", "get_task", "prepare", "score"]

logger = get_logger(__name__)


def finetune(
    task: str,
    model: str | Path,
    train: DataSource,
    dev: DataSource,
    out: str | Path,
    settings: FinetuneSettings | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: tuple[Any, ...] = (),
    command: str | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """Fine-tune `model` (a pretrained folder or hub name) on `train`; keep the best model on `dev` in `out`.

    train / dev: files, `datasets` sources (.parquet, .arrow, saved folders) or datasets.Dataset
    objects. `resume=True` continues an interrupted run in `out` from its newest checkpoint
    (the run then ends exactly as an uninterrupted one). Returns {"best": headline metrics of the
    kept model, "history", "train_seconds", "train_examples", "steps", "interrupted"}.
    """
    settings = (settings or FinetuneSettings()).for_task(task)
    out = Path(out)
    if resume:
        _check_resumable(out, settings)
    else:
        require_new_folder(out, overwrite=overwrite)
    device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, device, training=True)
    if settings.freeze_encoder and not get_task(task, **columns).sentence_level:
        raise BertkitError(
            f"--freeze-encoder works for sentence-level tasks (classify, nli, regress, multilabel), not {task}"
        )
    if settings.report_to == "tensorboard":
        require_tensorboard()
    prep = prepare(task, model, train, dev, settings, **columns)
    record = {
        "task": task,
        "base_model": str(model),
        "train": str(train) if isinstance(train, (str, Path)) else repr(train)[:200],
        "dev": str(dev) if isinstance(dev, (str, Path)) else repr(dev)[:200],
        "train_examples": len(prep.train_examples),
        "dev_examples": len(prep.dev_examples),
        "max_seq_len": prep.max_seq_len,
        "doc_stride": prep.stride,
        "labels": list(prep.label2id) if prep.label2id else None,
        "metric": prep.task.metric,
        "settings": dataclasses.asdict(settings),
        "command": command,
        "status": "running",
    }
    out.mkdir(parents=True, exist_ok=True)  # the first write: everything above was checked
    if not settings.skip_eval:
        prep.tokenizer.save(out)
    prep.model.to(device)
    result = _train(prep, settings, out, record, resume, precision, callbacks)
    if not settings.skip_eval:
        outputs.publish_best(out)
        record.update(
            status="interrupted" if result["interrupted"] else "done",
            best=result["best_full"],
            history=result["history_full"],
            train_seconds=result["train_seconds"],
            steps=result["steps"],
        )
        atomic_write_json(out / FINETUNE_SETTINGS_FILE, record)
        outputs.write_card(out, record)
    if result["interrupted"]:
        kept = f"{out} holds the best model evaluated so far" if result["best"] else "no evaluation ran yet"
        logger.warning(f"stopped at step {result['steps']}: {kept}; run the same command with --resume to continue")
    return result


def _check_resumable(out: Path, settings: FinetuneSettings) -> None:
    """`resume` needs a run of the same recipe in `out` with a checkpoint."""
    saved = saved_record(out)
    if not saved or resume_point(out, True) is None:
        raise BertkitError(
            f"--resume: {out} holds no checkpoint of an earlier bertkit finetune run; run without --resume"
        )
    ignored = {"progress", "log_every", "report_to", "device", "eval_batch_size"}
    now = dataclasses.asdict(settings)
    differ = [
        f"{k} {now[k]!r} (was {v!r})"
        for k, v in saved.get("settings", {}).items()
        if k in now and k not in ignored and now[k] != v
    ]
    if differ:
        raise BertkitError(f"--resume with the recipe of the interrupted run; changed: {', '.join(differ)}")


def _resumed_step(out: Path, resume: bool) -> int:
    point = resume_point(out, resume)
    match = re.search(r"(\d+)$", point.name) if point is not None else None
    return int(match.group(1)) if match else 0


def _train(
    prep: Prepared,
    settings: FinetuneSettings,
    out: Path,
    record: dict[str, Any],
    resume: bool,
    precision: str,
    extra_callbacks: tuple[Any, ...],
) -> dict[str, Any]:
    """Hand the prepared features to the shared loop; keep the best dev model in `out/best`."""
    torch.manual_seed(settings.seed)  # dropout masks
    net, batches, run_eval = _wiring(prep, settings)
    steps = math.ceil(float(settings.epochs or 1) * batches.steps_per_epoch())
    steps = min(steps, settings.max_steps or steps)
    lr = float(settings.lr or 0)
    optimizer = build_optimizer(
        net, kind="adamw", lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=settings.weight_decay
    )
    scheduler = linear_schedule(optimizer, warmup_from_ratio(steps, settings.warmup_ratio), steps)
    device = next(prep.model.parameters()).device
    outputs.recover_best(out)
    start = _resumed_step(out, resume)
    kept = [h for h in (_saved_history(out) if resume else []) if h["step"] <= start]

    def on_history(history: list[dict[str, Any]]) -> None:
        atomic_write_json(out / FINETUNE_SETTINGS_FILE, {**record, "history": history})

    history = History(batches.steps_per_epoch(), on_history, kept)
    callbacks: list[Any] = [history, *extra_callbacks]
    if settings.early_stopping:
        callbacks.append(EarlyStopping(settings.early_stopping, prep.task.metric, kept))
    if settings.report_to == "tensorboard":
        callbacks.append(TensorBoard(out / "runs"))
    if not settings.skip_eval:
        on_history(kept)

    def eval_fn(model: torch.nn.Module) -> dict[str, float]:
        history.full = run_eval(model)
        return headline(history.full)

    config = _loop_config(settings, out, steps, batches.steps_per_epoch(), prep.task, resume, precision)
    state = train(
        net,
        optimizer,
        scheduler,
        batches,
        config,
        eval_fn=None if settings.skip_eval else eval_fn,
        callbacks=callbacks,
        env=DistEnv(device=device),
        save_fn=lambda _net, folder: outputs.save_best(folder.parent, prep.model.save_pretrained),
    )
    if settings.skip_eval:
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)  # a speed run keeps nothing
    full = history.records
    chosen = best_index(full, prep.task.metric)
    best = {} if chosen is None else full[chosen]
    examples = len(prep.train_features) * (state.step - start) / max(1, batches.steps_per_epoch())
    return {
        "best": headline(best),
        "best_full": best,
        "history": [headline(h) for h in full],
        "history_full": full,
        "train_seconds": state.train_seconds,
        "train_examples": examples,
        "steps": state.step,
        "interrupted": state.interrupted,
    }


def _loop_config(
    settings: FinetuneSettings,
    out: Path,
    steps: int,
    steps_per_epoch: int,
    task: TaskAdapter,
    resume: bool,
    precision: str,
) -> Any:
    """The shared loop's settings for a fine-tuning run: checkpoints each epoch, the best model kept."""
    return TrainConfig(
        out_dir=out,
        max_steps=steps,
        epochs=settings.epochs,
        max_grad_norm=settings.max_grad_norm or None,
        precision=precision,
        log_every=settings.log_every,
        eval_every=settings.eval_every or 0,
        eval_each_epoch=not settings.skip_eval,
        save_every=settings.save_every or steps_per_epoch,
        keep_checkpoints=2,
        best_metric=None if settings.skip_eval else task.metric,
        resume=resume,
        progress=settings.progress,
        plot=not settings.skip_eval,
        save_final=False,
        desc=f"finetune {task.name}",
    )


def _saved_history(out: Path) -> list[dict[str, Any]]:
    history = saved_record(out).get("history") or []
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("step"), int)]


def _wiring(prep: Prepared, settings: FinetuneSettings) -> tuple[torch.nn.Module, Any, Any]:
    """(the module the loop trains, its batches, the dev evaluation) for a full or frozen-encoder run."""
    features, batch_size, seed = prep.train_features, int(settings.batch_size or 1), settings.seed
    if not features:
        raise BertkitError("no training examples")
    if settings.freeze_encoder:
        return _frozen_wiring(prep, settings)
    pad_id = getattr(prep.model.config, "pad_token_id", 0) or 0
    lengths = np.array([len(f["input_ids"]) for f in features])

    def plan(epoch: int) -> list[Any]:  # reshuffled each epoch, similar lengths together
        return length_grouped_plan(lengths, batch_size, seed, epoch, group=50, drop_last=False)

    batches = IndexBatches(plan, lambda idx, epoch: pad_batch([features[i] for i in idx], pad_id), settings.grad_accum)
    return prep.model, batches, lambda net: score(prep, net, settings.eval_batch_size)


def _frozen_wiring(prep: Prepared, settings: FinetuneSettings) -> tuple[torch.nn.Module, Any, Any]:
    model, size = prep.model, settings.eval_batch_size
    for p in model.bert.parameters():
        p.requires_grad_(False)
    train_x = frozen.encoder_features(model, prep.train_features, size, settings.progress, "encoder features (train)")
    dev_x = frozen.encoder_features(model, prep.dev_features, size, settings.progress, "encoder features (dev)")
    train_y = frozen.targets(prep.train_features)
    head = frozen.CachedHead(model)
    n, batch_size, seed = len(train_x), int(settings.batch_size or 1), settings.seed
    batches = IndexBatches(
        lambda epoch: frozen.shuffled_plan(n, batch_size, seed, epoch),
        lambda idx, epoch: {"features": train_x[idx], "labels": train_y[idx]},
        settings.grad_accum,
    )

    def run_eval(_net: torch.nn.Module) -> dict[str, Any]:
        return prep.task.score(prep.dev_examples, prep.dev_meta, frozen.head_outputs(head, dev_x), prep.label2id)

    return head, batches, run_eval
