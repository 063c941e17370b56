"""Evaluate: a fine-tuned folder + labelled data -> the task's metrics (printed and written as JSON)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write_json
from bertkit.hardware import resolve_device, resolve_precision
from bertkit.inference import prepare as for_dtype
from bertkit.loading import load_folder, load_settings
from bertkit.tasks.adapters import get_task
from bertkit.tasks.examples import DataSource
from bertkit.tasks.features import forward_batches
from bertkit.tasks.hf_datasets import source_name
from bertkit.tasks.prepare import Prepared, check_length
from bertkit.tasks.qa import check_stride
from bertkit.tasks.settings import RECIPES


def saved_record(folder: str | os.PathLike) -> dict[str, Any]:
    """finetune.json of a fine-tuned folder ({} for a plain pretrained folder)."""
    return load_settings(folder)


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics printed on one line: per-type breakdowns stay in the file."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def score(prep: Prepared, model: Any, batch_size: int = 64, progress: bool = False) -> dict[str, Any]:
    """Run the model on the prepared dev features and compute the task's metric."""
    outputs = forward_batches(
        model,
        prep.dev_features,
        batch_size,
        prep.task.outputs,
        prep.task.per_token,
        progress,
        f"evaluate {prep.task.name}",
    )
    return prep.task.score(prep.dev_examples, prep.dev_meta, outputs, prep.label2id)


def evaluate(
    task: str,
    model: str | os.PathLike,
    data: DataSource,
    *,
    batch_size: int = 64,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    output: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    progress: bool = False,
    **columns: Any,
) -> dict[str, Any]:
    """Score a fine-tuned folder on labelled data; writes the metrics JSON and returns its headline.

    precision: the inference arithmetic (fp32, bf16, fp16 or int8), refused where emulated.
    """
    adapter = get_task(task, **columns)
    folder = Path(model)
    saved = saved_record(folder)
    if saved.get("task") and saved["task"] != task and {saved["task"], task} != {"classify", "nli"}:
        raise BertkitError(
            f"--model {folder} was fine-tuned for {saved['task']}, not {task}; run bertkit evaluate {saved['task']}"
        )
    target = Path(output) if output else folder / f"eval_{Path(str(source_name(data))).stem}.json"
    if not target.parent.is_dir():
        raise BertkitError(f"--output {target}: its folder does not exist")
    on = resolve_device(device)
    if precision != "int8":
        resolve_precision(precision, on, training=False)
    recipe = RECIPES[task] if task in RECIPES else {}
    max_seq_len = max_seq_len or saved.get("max_seq_len") or saved.get("max_len") or recipe["max_seq_len"]
    stride = int(doc_stride or saved.get("doc_stride") or recipe["doc_stride"])
    if task == "qa":
        check_stride(int(max_seq_len), stride)
    examples = adapter.read(data)
    net, tokenizer, _ = load_folder(folder, adapter.head, require_head=True)
    check_length(int(max_seq_len), net.config)
    label2id = _label2id(adapter, net.config, folder)
    adapter.check(examples, label2id, data)
    features, meta = adapter.encode(examples, tokenizer, int(max_seq_len), stride, label2id, train=False)
    run = for_dtype(net.to(on), None if precision == "fp32" else precision)
    prep = Prepared(adapter, run, tokenizer, label2id, int(max_seq_len), stride, [], [], examples, features, meta)
    start = time.perf_counter()
    full = score(prep, run, batch_size, progress)
    atomic_write_json(
        target,
        {
            **full,
            "examples": len(examples),
            "seconds": time.perf_counter() - start,
            "model": str(folder),
            "data": str(source_name(data)),
        },
    )
    return headline(full)


def _label2id(adapter: Any, config: Any, folder: Path) -> dict[str, int] | None:
    """The model's label set (config.json id2label), for tasks with labels."""
    if "id2label" not in adapter.head_options([]):
        return None
    if not config.id2label:
        raise InputFileError(
            folder, "has no label set in config.json (id2label); evaluate a model made by bertkit finetune"
        )
    return {label: int(i) for i, label in config.id2label.items()}
