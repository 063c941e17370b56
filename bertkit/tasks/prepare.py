"""Everything a fine-tuning run needs, read and checked before anything is written: the examples,
the label set, the model with its new head, the tokenizer and the features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.loading import load_folder
from bertkit.tasks.adapters import TaskAdapter, get_task
from bertkit.tasks.examples import DataSource
from bertkit.tasks.qa import check_stride
from bertkit.tasks.settings import FinetuneSettings


@dataclass
class Prepared:
    """Everything a run (or an evaluation) needs, built and checked before anything is written."""

    task: TaskAdapter
    model: Any
    tokenizer: Any
    label2id: dict[str, int] | None
    max_seq_len: int
    stride: int
    train_examples: list[Any]
    train_features: list[dict[str, Any]]
    dev_examples: list[Any]
    dev_features: list[dict[str, Any]]
    dev_meta: Any


def check_length(max_seq_len: int, config: Any, flag: str = "--max-seq-len") -> int:
    """The sequence length, refused in one line when the model has fewer positions."""
    if max_seq_len > config.max_position_embeddings:
        raise BertkitError(
            f"{flag} {max_seq_len} exceeds the model's max_position_embeddings "
            f"{config.max_position_embeddings}; use a smaller {flag}"
        )
    return max_seq_len


def prepare(
    task_name: str, model: Any, train: DataSource, dev: DataSource, settings: FinetuneSettings, **columns: Any
) -> Prepared:
    """Read and check data, build the label set, load model and tokenizer, make features.

    `settings` must be resolved for the task (FinetuneSettings.for_task).
    """
    task = get_task(task_name, **columns)
    max_seq_len, stride = int(settings.max_seq_len or 0), int(settings.doc_stride or 0)
    if task_name == "qa":
        check_stride(max_seq_len, stride)
    train_examples = task.read(train)[: settings.limit_train]
    dev_examples = task.read(dev)[: settings.limit_dev]
    labels = task.labels(train_examples, train)
    label2id = {label: i for i, label in enumerate(labels)} if labels is not None else None
    task.check(dev_examples, label2id, dev)
    torch.manual_seed(settings.seed)  # the new head's initial weights
    net, tokenizer, _ = load_folder(model, task.head, model_options=task.head_options(labels))
    check_length(max_seq_len, net.config)
    task.start_head(net, train_examples)
    train_features, _ = task.encode(train_examples, tokenizer, max_seq_len, stride, label2id, train=True)
    dev_features, dev_meta = task.encode(dev_examples, tokenizer, max_seq_len, stride, label2id, train=False)
    return Prepared(
        task,
        net,
        tokenizer,
        label2id,
        max_seq_len,
        stride,
        train_examples,
        train_features,
        dev_examples,
        dev_features,
        dev_meta,
    )
