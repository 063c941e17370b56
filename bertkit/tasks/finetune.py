"""Fine-tune and evaluate: a task file + a pretrained folder -> the shared training loop -> metrics.

The tasks plug in what differs (reader, features, head, metric); the optimiser, schedule and
loop are the pretraining ones (bertkit.train). A run checks everything first — files, labels,
columns, model, tokenizer, output folder — and writes nothing until all of it is valid; then it
evaluates on the dev file after every epoch (and every N steps if asked), keeps the best
checkpoint in the output folder with its tokenizer and label set, and logs the curves.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError

DEFAULT_MAX_LEN = {"classify": 128, "nli": 128, "qa": 384, "ner": 128}
SETTINGS_FILE = "finetune.json"


@dataclass
class FinetuneSettings:
    """The recipe. Defaults are BERT's fine-tuning recipe as the transformers examples run it."""

    epochs: float = 3.0
    lr: float = 5e-5
    batch_size: int = 32
    max_len: int | None = None  # None: 128, or 384 for qa
    doc_stride: int = 128  # qa/ner windows: tokens of overlap
    weight_decay: float = 0.01  # not on biases and LayerNorm weights
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    eval_every: int | None = None  # also evaluate every N optimizer steps
    max_steps: int | None = None
    seed: int = 0
    bf16: bool = False
    eval_batch_size: int = 64
    limit_train: int | None = None  # use only the first N training examples (demo, bench)
    limit_dev: int | None = None
    skip_eval: bool = False  # bench only: no dev evaluation and no checkpoint
    progress: bool = True
    log_every: int = 10  # steps per record in log.jsonl

    def check(self) -> None:
        for name in ("epochs", "lr", "batch_size", "grad_accum", "eval_batch_size"):
            if not getattr(self, name) > 0:
                raise BertkitError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise BertkitError(f"--warmup-ratio must lie in [0, 1), got {self.warmup_ratio}")
        if self.max_len is not None and self.max_len < 8:
            raise BertkitError(f"--max-len {self.max_len} is too short; use at least 8 tokens")


def get_task(name: str, **columns: Any):
    """The task adapter: reader, label set, features, head and metric of one task."""
    from bertkit.tasks.classification import ClassificationTask
    from bertkit.tasks.ner import NERTask
    from bertkit.tasks.qa import QATask

    if name in ("classify", "nli"):
        return ClassificationTask(name, **columns)
    if name == "qa":
        return QATask()
    if name == "ner":
        return NERTask()
    raise BertkitError(f"unknown task {name!r}; choose classify, nli, qa or ner")


# ----------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """Everything a run needs, built and checked before anything is written."""

    task: Any
    model: Any
    tokenizer: Any
    label2id: dict[str, int] | None
    max_len: int
    stride: int
    train_examples: list
    train_features: list
    dev_examples: list
    dev_features: list
    dev_meta: Any


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BertkitError(
            f"--out {out}: the folder exists and is not empty; choose a new folder "
            "(bertkit never overwrites an earlier run)"
        )


def _load_config(folder: Path):
    from bertkit.model import BertConfig

    if not folder.is_dir():
        raise InputFileError(folder, "model folder not found (give the folder holding config.json)")
    return BertConfig.from_pretrained(folder)


def _max_len(task: str, asked: int | None, config, what: str) -> int:
    max_len = asked or DEFAULT_MAX_LEN[task]
    if max_len > config.max_position_embeddings:
        raise BertkitError(
            f"{what} {max_len} exceeds the model's max_position_embeddings "
            f"{config.max_position_embeddings}; use a smaller --max-len"
        )
    return max_len


def prepare(task_name: str, model_dir, train, dev, settings: FinetuneSettings, **columns) -> Prepared:
    """Read and check data, build the label set, load model and tokenizer, make features."""
    import torch

    from bertkit import model as models
    from bertkit.tasks.readers import check_labels
    from bertkit.tokenizers import Tokenizer

    settings.check()
    task = get_task(task_name, **columns)
    model_dir = Path(model_dir)
    config = _load_config(model_dir)
    max_len = _max_len(task_name, settings.max_len, config, "--max-len")
    stride = settings.doc_stride
    if task_name == "qa" and not 0 < stride <= max_len - 64:
        raise BertkitError(
            f"--doc-stride {stride} must be positive and leave room for the question in "
            f"windows of {max_len} tokens (at most {max_len - 64})"
        )
    train_examples = task.read(train)[: settings.limit_train]
    dev_examples = task.read(dev)[: settings.limit_dev]
    labels = task.labels(train_examples, train)
    label2id = {label: i for i, label in enumerate(labels)} if labels is not None else None
    if label2id is not None:
        check_labels(dev_examples, label2id, dev)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    torch.manual_seed(settings.seed)  # the new head's initial weights
    head = getattr(models, task.head)
    kwargs = {} if label2id is None else {"num_labels": len(label2id), "id2label": dict(enumerate(labels))}
    model = head.from_pretrained(model_dir, **kwargs)
    train_features, _ = task.encode(train_examples, tokenizer, max_len, stride, label2id, train=True)
    dev_features, dev_meta = task.encode(dev_examples, tokenizer, max_len, stride, label2id, train=False)
    return Prepared(
        task,
        model,
        tokenizer,
        label2id,
        max_len,
        stride,
        train_examples,
        train_features,
        dev_examples,
        dev_features,
        dev_meta,
    )


def score(prep: Prepared, model, batch_size: int = 64) -> dict:
    """Run the model on the prepared dev features and compute the task's metric."""
    from bertkit.tasks.batching import forward_batches

    outputs = forward_batches(model, prep.dev_features, batch_size, prep.task.outputs, prep.task.per_token)
    return prep.task.score(prep.dev_examples, prep.dev_meta, outputs, prep.label2id)


# ----------------------------------------------------------------------------- fine-tuning


def finetune(task: str, model, train, dev, out, settings: FinetuneSettings | None = None, **columns) -> dict:
    """Fine-tune `model` (a pretrained folder) on `train`, keep the best checkpoint on `dev` in `out`.

    Returns {"best": metrics of the kept checkpoint, "history": every evaluation,
    "train_seconds", "train_examples"}.
    """
    settings = settings or FinetuneSettings()
    out = Path(out)
    _check_out(out)
    prep = prepare(task, model, train, dev, settings, **columns)
    record = {
        "task": task,
        "base_model": str(model),
        "train": str(train),
        "dev": str(dev),
        "max_len": prep.max_len,
        "doc_stride": prep.stride,
        "labels": list(prep.label2id) if prep.label2id else None,
        "settings": asdict(settings),
    }
    out.mkdir(parents=True, exist_ok=True)  # the first write: everything above was checked
    if not settings.skip_eval:
        prep.tokenizer.save(out)
    result = _train(prep, settings, out, record)
    if not settings.skip_eval:
        _write_json(
            out / SETTINGS_FILE,
            {
                **record,
                "best": result["best_full"],
                "history": result["history"],
                "train_seconds": result["train_seconds"],
                "steps": result["steps"],
            },
        )
    return result


def _train(prep: Prepared, settings: FinetuneSettings, out: Path, record: dict) -> dict:
    """Hand the prepared features to the shared loop; keep the best dev checkpoint in `out`."""
    import shutil

    import numpy as np
    import torch

    from bertkit.data.batching import length_grouped_plan
    from bertkit.tasks.batching import pad_batch
    from bertkit.train.loop import CHECKPOINT_DIR, IndexBatches, TrainConfig, train
    from bertkit.train.optim import build_optimizer, linear_schedule, warmup_from_ratio

    torch.manual_seed(settings.seed)  # dropout masks
    model, features = prep.model, prep.train_features
    if not features:
        raise BertkitError("no training examples")
    pad_id = getattr(model.config, "pad_token_id", 0) or 0
    lengths = np.array([len(f["input_ids"]) for f in features])

    def plan(epoch: int) -> list:  # reshuffled each epoch, similar lengths together (as in pretraining)
        return length_grouped_plan(lengths, settings.batch_size, settings.seed, epoch, group=50, drop_last=False)

    batches = IndexBatches(plan, lambda idx, epoch: pad_batch([features[i] for i in idx], pad_id), settings.grad_accum)
    steps = math.ceil(settings.epochs * batches.steps_per_epoch())
    if settings.max_steps:
        steps = min(steps, settings.max_steps)
    optimizer = build_optimizer(model, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = linear_schedule(optimizer, warmup_from_ratio(steps, settings.warmup_ratio), steps)
    history: list[dict] = []

    def eval_fn(net) -> dict[str, float]:
        metrics = score(prep, net, settings.eval_batch_size)
        history.append(metrics)
        return headline(metrics)

    def save_fn(net, folder: Path) -> None:
        net.save_pretrained(folder)

    config = TrainConfig(
        out_dir=out,
        max_steps=steps,
        epochs=settings.epochs,
        max_grad_norm=settings.max_grad_norm,
        bf16=settings.bf16,
        log_every=settings.log_every,
        eval_every=settings.eval_every or 0,
        eval_each_epoch=not settings.skip_eval,
        best_metric=None if settings.skip_eval else prep.task.metric,
        progress=settings.progress,
        plot=not settings.skip_eval,
        save_final=False,
        desc=f"finetune {record['task']}",
    )
    state = train(
        model, optimizer, scheduler, batches, config, eval_fn=None if settings.skip_eval else eval_fn, save_fn=save_fn
    )
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)  # resume state: not kept for fine-tuning
    best = {}
    if (out / "best").is_dir():
        for f in (out / "best").iterdir():  # the best checkpoint becomes the output folder's model
            os.replace(f, out / f.name)
        (out / "best").rmdir()
        best = {**history[_best_index(history, prep.task.metric)], "step": state.best_step}
    if state.interrupted:
        print(
            f"stopped at step {state.step}: {out} holds the best model evaluated so far"
            if best
            else f"stopped at step {state.step}, before the first evaluation: no model saved",
            flush=True,
        )
    examples = len(prep.train_examples) * state.step / max(1, batches.steps_per_epoch())
    return {
        "best": headline(best),
        "best_full": best,
        "history": [headline(h) for h in history],
        "train_seconds": state.train_seconds,
        "train_examples": examples,
        "steps": state.step,
        "interrupted": state.interrupted,
    }


def _best_index(history: list[dict], metric: str) -> int:
    return max(range(len(history)), key=lambda i: (history[i][metric], -i))


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- evaluation


def evaluate(
    task: str,
    model,
    data,
    *,
    batch_size: int = 64,
    max_len: int | None = None,
    doc_stride: int | None = None,
    output=None,
    **columns,
) -> dict:
    """Score a fine-tuned folder on a labelled file; writes the metrics JSON and returns it."""
    from bertkit import model as models
    from bertkit.loading import check_trained_head, load_settings
    from bertkit.tasks.readers import check_labels
    from bertkit.tokenizers import Tokenizer

    adapter = get_task(task, **columns)
    folder = Path(model)
    config = _load_config(folder)
    saved = load_settings(folder)
    if saved.get("task") and saved["task"] != task and {saved["task"], task} != {"classify", "nli"}:
        raise BertkitError(
            f"--model {folder} was fine-tuned for {saved['task']}, not {task}; run bertkit evaluate {saved['task']}"
        )
    max_len = _max_len(task, max_len or saved.get("max_len"), config, "--max-len")
    stride = doc_stride or saved.get("doc_stride") or 128
    examples = adapter.read(data)
    label2id = None
    if adapter.labels(examples[:1], data) is not None:
        if not config.id2label:
            raise BertkitError(
                f"--model {folder} has no label set in config.json (id2label); "
                "evaluate a model made by bertkit finetune"
            )
        label2id = {label: i for i, label in config.id2label.items()}
        check_labels(examples, label2id, data)
    target = Path(output) if output else folder / f"eval_{Path(data).stem}.json"
    if not target.parent.is_dir():
        raise BertkitError(f"--output {target}: its folder does not exist")
    tokenizer = Tokenizer.from_pretrained(folder)
    net = getattr(models, adapter.head).from_pretrained(folder)
    check_trained_head(net, folder)
    features, meta = adapter.encode(examples, tokenizer, max_len, stride, label2id, train=False)
    prep = Prepared(adapter, net, tokenizer, label2id, max_len, stride, [], [], examples, features, meta)
    start = time.perf_counter()
    full = score(prep, net, batch_size)
    _write_json(
        target,
        {
            **full,
            "examples": len(examples),
            "seconds": time.perf_counter() - start,
            "model": str(folder),
            "data": str(data),
        },
    )
    return headline(full)


def headline(metrics: dict) -> dict:
    """The metrics printed on one line: per-type breakdowns stay in the file."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}
