"""Sentence and sentence-pair tasks on the [CLS] vector: classification, regression, multi-label.

The lecture's sentiment example feeds one sentence, [CLS] sentence [SEP]; its NLI example feeds
[CLS] premise [SEP] hypothesis [SEP] with segment ids 0 then 1. Either way the pooled [CLS]
representation goes through a linear layer: a softmax over the labels seen in training
(classify, nli), one number trained with squared error (regress: e.g. SICK relatedness, scored
by Pearson / Spearman), or one sigmoid per label (multilabel: any subset of the labels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from bertkit.errors import InputFileError
from bertkit.loading import newly_initialized
from bertkit.tasks.examples import DataSource, TextExample
from bertkit.tasks.hf_datasets import source_name
from bertkit.tasks.metrics import classification_scores, multilabel_scores, regression_scores
from bertkit.tasks.readers import check_labels, label_list, read_task_data

MULTI_LABEL_SEPARATOR = ","


def encode(
    examples: Sequence[TextExample],
    tokenizer: Any,
    max_length: int,
    label2id: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Examples -> features (input_ids, token_type_ids and, when labelled, `labels`).

    Pairs are truncated longest-first, as BERT's run_classifier does.
    """
    pairs = [ex.text_pair for ex in examples]
    has_pair = [p is not None for p in pairs]
    if any(has_pair) and not all(has_pair):
        raise ValueError("mix of single sentences and sentence pairs in one call")
    enc = tokenizer(
        [ex.text for ex in examples],
        text_pair=pairs if all(has_pair) and pairs else None,
        truncation="longest_first" if all(has_pair) and pairs else True,
        max_length=max_length,
        padding=False,
    )
    features = []
    for i, ex in enumerate(examples):
        feature: dict[str, Any] = {
            "input_ids": list(enc["input_ids"][i]),
            "token_type_ids": list(enc["token_type_ids"][i]),
        }
        if label2id is not None and ex.label is not None:
            feature["labels"] = label2id[ex.label]
        features.append(feature)
    return features


def scores(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> dict[str, float]:
    """Accuracy, macro-F1, MCC, plus F1 of label id 1 (the positive class) when there are two labels."""
    return classification_scores(gold, pred, num_labels)


def predictions(probs: np.ndarray, id2label: Mapping[int, str]) -> list[dict[str, Any]]:
    """Rows of class probabilities -> {"label", "score", "probabilities": {label: p}}."""
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append(
            {
                "label": id2label[best],
                "score": float(row[best]),
                "probabilities": {id2label[i]: float(p) for i, p in enumerate(row)},
            }
        )
    return out


class _TableTask:
    """What the [CLS] tasks share: table columns, reading, encoding."""

    name = "classify"
    head = "BertForSequenceClassification"
    outputs = ("logits",)
    per_token = False
    sentence_level = True

    def __init__(
        self,
        text_column: str | int | None = None,
        pair_column: str | int | None = None,
        label_column: str | int | None = None,
        header: bool = True,
    ):
        self.columns: dict[str, Any] = dict(
            text_column=text_column, pair_column=pair_column, label_column=label_column, header=header
        )

    def read(self, source: DataSource, require_labels: bool = True) -> list[TextExample]:
        return read_task_data(self.name, source, require_labels=require_labels, **self.columns)

    def _targets(self, examples: Sequence[TextExample], label2id: Mapping[str, int] | None) -> list[Any]:
        return [label2id[str(ex.label)] for ex in examples] if label2id else []

    def start_head(self, model: Any, examples: Sequence[TextExample]) -> None:
        return None  # random weights, zero bias: Hugging Face's start

    def check(self, examples: Sequence[TextExample], label2id: dict[str, int] | None, source: DataSource) -> None:
        """Fail (file:line) on a label the model was not trained with."""
        if label2id is not None:
            check_labels(examples, label2id, source)

    def encode(
        self,
        examples: Sequence[TextExample],
        tokenizer: Any,
        max_seq_len: int,
        stride: int,
        label2id: Mapping[str, int] | None = None,
        train: bool = False,
    ) -> tuple[list[dict[str, Any]], None]:
        features = encode(examples, tokenizer, max_seq_len)
        if all(ex.label is not None for ex in examples):
            for feature, target in zip(features, self._targets(examples, label2id)):
                feature["labels"] = target
        return features, None


class ClassificationTask(_TableTask):
    """`classify` (one sentence) and `nli` (premise + hypothesis): one label per input."""

    metric = "accuracy"

    def __init__(self, name: str = "classify", **columns: Any):
        super().__init__(**columns)
        self.name = name

    def labels(self, examples: Sequence[TextExample], source: DataSource) -> list[str]:
        return label_list((ex.label for ex in examples), source)

    def head_options(self, labels: list[str] | None) -> dict[str, Any]:
        labels = labels or []
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels))}

    def score(
        self, examples: Sequence[TextExample], meta: Any, outputs: Sequence[tuple], label2id: Mapping[str, int] | None
    ) -> dict[str, float]:
        assert label2id is not None
        gold = [label2id[str(ex.label)] for ex in examples]
        pred = [int(out[0].argmax()) for out in outputs]
        return scores(gold, pred, len(label2id))


class RegressionTask(_TableTask):
    """`regress`: one number per input (sentence or pair), mean squared error; Pearson / Spearman."""

    name = "regress"
    metric = "pearson"

    def labels(self, examples: Sequence[TextExample], source: DataSource) -> None:
        for ex in examples:  # checked here, before anything is written
            self._value(ex, source)
        return None

    @staticmethod
    def _value(ex: TextExample, source: DataSource = "data") -> float:
        try:
            value = float(str(ex.label))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputFileError(source_name(source), f"score {ex.label!r} is not a finite number", ex.line)
        return value

    def head_options(self, labels: list[str] | None) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression"}

    def start_head(self, model: Any, examples: Sequence[TextExample]) -> None:
        """A new head's bias starts at the mean training score.

        Why: from a zero bias the first predictions are ~0 against scores of 1-5 (SICK), a squared
        error ~12 whose clipped gradients drive the pooler's tanh into saturation before the bias
        (moving ~lr per step) gets there, and the head can settle on the mean score for every input.
        Started at the mean, training fits the differences from the first step (docs/finetuning.md).
        """
        if "classifier.bias" in newly_initialized(model) and examples:
            with torch.no_grad():
                model.classifier.bias.fill_(sum(self._value(ex) for ex in examples) / len(examples))

    def check(self, examples: Sequence[TextExample], label2id: dict[str, int] | None, source: DataSource) -> None:
        self.labels(examples, source)

    def _targets(self, examples: Sequence[TextExample], label2id: Mapping[str, int] | None) -> list[Any]:
        return [self._value(ex) for ex in examples]

    def score(
        self, examples: Sequence[TextExample], meta: Any, outputs: Sequence[tuple], label2id: Any
    ) -> dict[str, float]:
        return regression_scores([self._value(ex) for ex in examples], [float(out[0][0]) for out in outputs])


class MultiLabelTask(_TableTask):
    """`multilabel`: any subset of the labels per input (comma-separated in a table cell, a list in
    JSON); one sigmoid per label, predicted where its probability passes 0.5; micro / macro F1."""

    name = "multilabel"
    metric = "micro_f1"

    @staticmethod
    def split(label: str | None) -> list[str]:
        return [part.strip() for part in (label or "").split(MULTI_LABEL_SEPARATOR) if part.strip()]

    def labels(self, examples: Sequence[TextExample], source: DataSource) -> list[str]:
        return label_list((label for ex in examples for label in self.split(ex.label)), source)

    def check(self, examples: Sequence[TextExample], label2id: dict[str, int] | None, source: DataSource) -> None:
        if label2id is not None:
            split = [TextExample(ex.text, None, label, ex.line) for ex in examples for label in self.split(ex.label)]
            check_labels(split, label2id, source)

    def head_options(self, labels: list[str] | None) -> dict[str, Any]:
        labels = labels or []
        return {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "problem_type": "multi_label_classification",
        }

    def _targets(self, examples: Sequence[TextExample], label2id: Mapping[str, int] | None) -> list[Any]:
        assert label2id is not None
        out = []
        for ex in examples:
            row = np.zeros(len(label2id), dtype=np.float32)
            row[[label2id[label] for label in self.split(ex.label)]] = 1.0
            out.append(row)
        return out

    def score(
        self, examples: Sequence[TextExample], meta: Any, outputs: Sequence[tuple], label2id: Any
    ) -> dict[str, float]:
        gold = np.stack(self._targets(examples, label2id)) > 0.5
        pred = np.stack([out[0] for out in outputs]) > 0.0  # logit > 0 <=> sigmoid > 0.5
        return multilabel_scores(gold, pred)
