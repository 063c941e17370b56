"""What a fine-tuning task plugs into the shared code: the `TaskAdapter` protocol and the registry.

A task adapter reads examples, names its label set, turns examples into features for its head,
and turns the head's outputs back into the task's metrics; `finetune` and `evaluate` do the rest
the same way for every task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bertkit.errors import BertkitError
from bertkit.tasks.classification import ClassificationTask, MultiLabelTask, RegressionTask
from bertkit.tasks.examples import DataSource
from bertkit.tasks.ner import NERTask
from bertkit.tasks.qa import QATask

Features = list[dict[str, Any]]


class TaskAdapter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def head(self) -> str:
        """The model class in bertkit.model that carries this task's head."""

    @property
    def outputs(self) -> Sequence[str]:
        """The output fields the metric reads (e.g. "logits")."""

    @property
    def per_token(self) -> bool:
        """Outputs are per token (cut to each feature's length) rather than per input."""

    @property
    def metric(self) -> str:
        """The dev metric that picks the best checkpoint (higher is better)."""

    @property
    def sentence_level(self) -> bool:
        """One vector per input: the encoder can be frozen and its features cached."""

    def read(self, source: DataSource, require_labels: bool = True) -> list[Any]: ...

    def labels(self, examples: Sequence[Any], source: DataSource) -> list[str] | None: ...

    def check(self, examples: Sequence[Any], label2id: dict[str, int] | None, source: DataSource) -> None: ...

    def head_options(self, labels: list[str] | None) -> dict[str, Any]: ...

    def start_head(self, model: Any, examples: Sequence[Any]) -> None:
        """Set a newly initialised head's starting point from the training examples (or leave it)."""

    def encode(
        self,
        examples: Sequence[Any],
        tokenizer: Any,
        max_seq_len: int,
        stride: int,
        label2id: dict[str, int] | None = None,
        train: bool = False,
    ) -> tuple[Features, Any]: ...

    def score(
        self,
        examples: Sequence[Any],
        meta: Any,
        outputs: Sequence[tuple[np.ndarray, ...]],
        label2id: dict[str, int] | None,
    ) -> dict[str, Any]: ...


def get_task(name: str, **columns: Any) -> TaskAdapter:
    """The adapter of task `name`; `columns` (text/pair/label column, header) for table tasks."""
    if name in ("classify", "nli"):
        return ClassificationTask(name, **columns)
    if name == "regress":
        return RegressionTask(**columns)
    if name == "multilabel":
        return MultiLabelTask(**columns)
    if name == "qa":
        return QATask()
    if name == "ner":
        return NERTask()
    raise BertkitError(f"unknown task {name!r}; choose classify, nli, regress, multilabel, qa or ner")
