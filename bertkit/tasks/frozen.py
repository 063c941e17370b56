"""The lecture's feature-extractor workflow: a frozen encoder, features computed once, a head trained on them.

With `freeze_encoder`, the encoder runs once over the training and dev inputs (eval mode, no
dropout) and its pooled [CLS] vectors are kept in memory; each epoch then trains only the
task's dropout + linear head on those vectors, which is seconds even for 67k sentences. The
head is the model's own `classifier`, so the saved model is the usual one: the unchanged encoder
and the trained head. The loss is the head's loss for the task's problem type.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertkit.log import get_logger
from bertkit.tasks.features import Feature, forward_batches

logger = get_logger(__name__)


def encoder_features(
    model: nn.Module, features: list[Feature], batch_size: int, progress: bool, desc: str
) -> torch.Tensor:
    """[N, H] pooled [CLS] vectors of the model's encoder for each feature, in order."""
    encoder: nn.Module = model.bert  # type: ignore[assignment]
    started = time.perf_counter()
    rows = forward_batches(encoder, features, batch_size, ("pooler_output",), False, progress, desc)
    logger.info(f"{desc}: {len(rows)} vectors in {time.perf_counter() - started:.1f} s, kept for every epoch")
    return torch.from_numpy(np.stack([r[0] for r in rows])) if rows else torch.empty(0, 0)


def targets(features: list[Feature]) -> torch.Tensor:
    """The features' `labels` stacked: class ids (long), scores (float) or label vectors (float)."""
    values = [f["labels"] for f in features]
    if isinstance(values[0], np.ndarray):
        return torch.from_numpy(np.stack(values).astype(np.float32))
    return torch.tensor(values, dtype=torch.long if isinstance(values[0], int) else torch.float)


class CachedHead(nn.Module):
    """The sequence head of `model` over cached encoder vectors: forward(features [B, H], labels)."""

    def __init__(self, model: Any):
        super().__init__()
        self.config: Any = model.config
        self.dropout: nn.Module = model.dropout
        self.classifier: nn.Linear = model.classifier

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None, **_: Any) -> Any:
        logits = self.classifier(self.dropout(features))
        loss = None
        if labels is not None:
            problem = self.config.problem_type or "single_label_classification"
            if problem == "regression":
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            elif problem == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels)
        return type("HeadOutput", (), {"loss": loss, "logits": logits})()


def head_outputs(head: CachedHead, vectors: torch.Tensor, batch_size: int = 1024) -> list[tuple[np.ndarray, ...]]:
    """The head's logits per cached vector, as forward_batches returns them (one tuple per input)."""
    was_training = head.training
    head.eval()
    rows: list[tuple[np.ndarray, ...]] = []
    with torch.inference_mode():
        for start in range(0, len(vectors), batch_size):
            logits = head(vectors[start : start + batch_size].to(head.classifier.weight.device)).logits
            rows += [(row,) for row in logits.float().cpu().numpy()]
    head.train(was_training)
    return rows


def shuffled_plan(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of a fresh permutation per epoch (lengths do not matter for cached vectors)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
