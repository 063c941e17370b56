"""Features -> padded training batches, and the model's outputs over features for prediction.

A feature is a dict of python lists/ints/floats (input_ids, token_type_ids and the task's
targets); a multi-label target is a numpy vector (one 0/1 per label). Batches are padded only to
their own longest row; training groups similar lengths with the pretraining plan
(bertkit.data.batching.length_grouped_plan), prediction sorts by length (bertkit.inference), so
little compute goes to padding, which on a CPU is most of the speed on short sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bertkit.constants import IGNORE_INDEX
from bertkit.inference import for_each_batch

Feature = dict[str, Any]


def pad_batch(features: Sequence[Feature], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack features into tensors, right-padding token rows to the longest one.

    input_ids pad with `pad_id`, token_type_ids with 0, token-level `labels` with IGNORE_INDEX
    (skipped by the loss); attention_mask marks the real tokens. Scalar fields are stacked as
    they are (int -> long, float -> float); numpy vectors (multi-label targets) are stacked as float.
    """
    width = max(len(f["input_ids"]) for f in features)
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if isinstance(values[0], np.ndarray):
            batch[key] = torch.from_numpy(np.stack(values).astype(np.float32))
        elif isinstance(values[0], (list, tuple)):
            fill = pad_id if key == "input_ids" else IGNORE_INDEX if key == "labels" else 0
            batch[key] = torch.tensor([list(v) + [fill] * (width - len(v)) for v in values], dtype=torch.long)
        else:
            batch[key] = torch.tensor(values, dtype=torch.long if isinstance(values[0], int) else torch.float)
    batch["attention_mask"] = torch.tensor(
        [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features], dtype=torch.long
    )
    return batch  # every token field [B, T]; scalar fields [B]; vectors [B, L]


def forward_batches(
    model: torch.nn.Module,
    features: Sequence[Feature],
    batch_size: int = 64,
    outputs: Sequence[str] = ("logits",),
    per_token: bool = False,
    progress: bool = False,
    desc: str = "evaluate",
) -> list[tuple[np.ndarray, ...]]:
    """Run the model over features in length-sorted batches; results come back in input order.

    Each result is a tuple of numpy arrays, one per name in `outputs`; with `per_token` they are
    cut to the feature's own length (padding rows dropped). The batching and threading are
    bertkit.inference's, the same path embeddings and fill-mask take. `progress` shows a tqdm
    bar on stderr (counted in features).
    """
    encoded = {
        "input_ids": [f["input_ids"] for f in features],
        "token_type_ids": [f["token_type_ids"] for f in features],
    }
    results: list[tuple[np.ndarray, ...]] = [()] * len(features)
    bar = None
    if progress and features:
        bar = tqdm(total=len(features), desc=desc, unit="ex", dynamic_ncols=True)

    def consume(idx: list[int], out: Any, mask: torch.Tensor) -> None:
        arrays = [getattr(out, name).float().cpu().numpy() for name in outputs]
        for r, i in enumerate(idx):
            n = len(features[i]["input_ids"])
            results[i] = tuple(a[r, :n] if per_token else a[r] for a in arrays)
        if bar is not None:
            bar.update(len(idx))

    try:
        if features:
            for_each_batch(model, encoded, batch_size, consume)
    finally:
        if bar is not None:
            bar.close()
    return results


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
