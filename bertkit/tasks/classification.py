"""Sentence and sentence-pair classification: the [CLS] vector -> a classifier.

The seed's sentiment example feeds one sentence, [CLS] sentence [SEP]; its NLI example feeds
[CLS] premise [SEP] hypothesis [SEP] with segment ids 0 then 1. Either way the pooled [CLS]
representation goes through a linear layer and a softmax over the labels seen in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bertkit.tasks.readers import TextExample


def encode(
    examples: Sequence[TextExample],
    tokenizer,
    max_length: int,
    label2id: Mapping[str, int] | None = None,
) -> list[dict]:
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
        feature = {"input_ids": list(enc["input_ids"][i]), "token_type_ids": list(enc["token_type_ids"][i])}
        if label2id is not None and ex.label is not None:
            feature["labels"] = label2id[ex.label]
        features.append(feature)
    return features


def scores(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> dict[str, float]:
    """Accuracy, plus F1 of label id 1 (the positive class) when there are two labels."""
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    if gold_a.size == 0:
        raise ValueError("no examples to score")
    out = {"accuracy": float((gold_a == pred_a).mean())}
    if num_labels == 2:
        tp = int(((pred_a == 1) & (gold_a == 1)).sum())
        fp = int(((pred_a == 1) & (gold_a != 1)).sum())
        fn = int(((pred_a != 1) & (gold_a == 1)).sum())
        out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return out


def predictions(probs: np.ndarray, id2label: Mapping[int, str]) -> list[dict]:
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


class ClassificationTask:
    """`classify` (one sentence) and `nli` (premise + hypothesis) for the shared fine-tuning code."""

    head = "BertForSequenceClassification"
    outputs = ("logits",)
    per_token = False
    metric = "accuracy"

    def __init__(self, name: str = "classify", text_column=None, pair_column=None, label_column=None, header=True):
        self.name = name
        self.columns = dict(text_column=text_column, pair_column=pair_column, label_column=label_column, header=header)

    def read(self, path, require_labels: bool = True) -> list[TextExample]:
        from bertkit.tasks.readers import read_task_data

        return read_task_data(self.name, path, require_labels=require_labels, **self.columns)

    def labels(self, examples: Sequence[TextExample], path) -> list[str]:
        from bertkit.tasks.readers import label_list

        return label_list((ex.label for ex in examples), path)

    def encode(self, examples, tokenizer, max_length: int, stride: int, label2id=None, train: bool = False):
        return encode(examples, tokenizer, max_length, label2id), None

    def score(self, examples, meta, outputs, label2id) -> dict[str, float]:
        gold = [label2id[ex.label] for ex in examples]
        pred = [int(out[0].argmax()) for out in outputs]
        return scores(gold, pred, len(label2id))
