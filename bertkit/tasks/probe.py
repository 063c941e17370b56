"""A linear probe: logistic regression on frozen BERT features (the lecture's feature-extractor use).

The encoder runs once over the training and dev sentences (or pairs); each input becomes one
vector — the [CLS] vector, the mean of its token vectors, or the pooler's output — taken from
the last layer or any hidden state (`layer`: 0 is the embedding output). The vectors are
standardised with the training set's mean and spread, and a multinomial logistic regression
with an L2 penalty (scikit-learn's objective: C · Σ cross-entropy + ½‖W‖², one weight vector for
two labels) is fitted by L-BFGS.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bertkit.errors import BertkitError
from bertkit.hardware import resolve_device
from bertkit.inference import for_each_batch, pool
from bertkit.loading import load_folder
from bertkit.tasks.adapters import get_task
from bertkit.tasks.examples import DataSource
from bertkit.tasks.features import Feature
from bertkit.tasks.metrics import classification_scores

FEATURES = ("cls", "mean", "pooler")


def sentence_vectors(
    encoder: Any,
    features: list[Feature],
    how: str = "cls",
    layer: int = -1,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """[N, H] float32 vectors of each feature, in input order (see the module docstring)."""
    if how not in FEATURES:
        raise BertkitError(f"features {how!r}: choose {', '.join(FEATURES)}")
    layers = int(encoder.config.num_hidden_layers)
    if not -(layers + 1) <= layer <= layers:
        raise BertkitError(f"--layer {layer}: hidden states are 0 (embeddings) .. {layers} (or -1 for the last)")
    if how == "pooler" and layer not in (-1, layers):
        raise BertkitError("--features pooler reads the last layer only; use cls or mean with --layer")
    out = torch.empty(len(features), int(encoder.config.hidden_size))
    encoded = {
        "input_ids": [f["input_ids"] for f in features],
        "token_type_ids": [f["token_type_ids"] for f in features],
    }
    bar = None
    if progress and features:
        bar = tqdm(total=len(features), desc="encoder features", unit="ex", leave=False, dynamic_ncols=True)

    def consume(idx: list[int], result: Any, mask: torch.Tensor) -> None:
        if how == "pooler":
            out[idx] = result.pooler_output.float().cpu()
        else:
            hidden = result.hidden_states[layer] if layer not in (-1, layers) else result.last_hidden_state
            out[idx] = pool(hidden, mask, how).cpu()
        if bar is not None:
            bar.update(len(idx))

    for_each_batch(encoder, encoded, batch_size, consume, output_hidden_states=layer not in (-1, layers))
    if bar is not None:
        bar.close()
    return out


class Logistic(torch.nn.Module):
    """x -> one logit per label. Two labels have one weight vector (logits 0 and w·x + b), as in
    scikit-learn, so that the L2 penalty means the same there; more labels have one vector each."""

    def __init__(self, width: int, num_labels: int):
        super().__init__()
        self.binary = num_labels == 2
        self.linear = torch.nn.Linear(width, 1 if self.binary else num_labels).double()
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.double())
        return torch.cat([torch.zeros_like(z), z], 1) if self.binary else z


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_labels: int, c: float = 1.0, max_iter: int = 500) -> Logistic:
    """Logistic regression, L2 penalty on the weights (not the bias) as scikit-learn's C, by L-BFGS."""
    model = Logistic(x.shape[1], num_labels)
    x = x.double()
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=1, max_iter=max_iter, tolerance_grad=1e-7, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = c * F.cross_entropy(model(x), y, reduction="sum") + 0.5 * model.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return model


def probe(
    model: Any,
    train: DataSource,
    dev: DataSource,
    *,
    task: str = "classify",
    features: str = "cls",
    layer: int = -1,
    max_seq_len: int = 128,
    batch_size: int = 64,
    c: float = 1.0,
    device: str = "auto",
    progress: bool = False,
    **columns: Any,
) -> dict[str, Any]:
    """Fit a logistic-regression probe on frozen features of `train`, score it on `dev`."""
    if task not in ("classify", "nli"):
        raise BertkitError(f"probe task {task!r}: choose classify or nli")
    if not c > 0:
        raise BertkitError(f"--c must be positive, got {c}")
    adapter = get_task(task, **columns)
    train_examples, dev_examples = adapter.read(train), adapter.read(dev)
    labels = adapter.labels(train_examples, train) or []
    label2id = {label: i for i, label in enumerate(labels)}
    adapter.check(dev_examples, label2id, dev)
    encoder, tokenizer, _ = load_folder(model, "BertModel")
    encoder.to(resolve_device(device))
    start = time.perf_counter()
    vectors = []
    for examples in (train_examples, dev_examples):
        feats, _ = adapter.encode(examples, tokenizer, max_seq_len, 0, label2id)
        vectors.append(sentence_vectors(encoder, feats, features, layer, batch_size, progress))
    encode_seconds = time.perf_counter() - start
    mean, std = vectors[0].mean(0), vectors[0].std(0).clamp(min=1e-6)
    x_train, x_dev = ((v - mean) / std for v in vectors)
    y_train = torch.tensor([label2id[str(ex.label)] for ex in train_examples])
    start = time.perf_counter()
    linear = fit_logistic(x_train, y_train, len(labels), c)
    with torch.no_grad():
        train_pred = linear(x_train.double()).argmax(1).numpy()
        dev_pred = linear(x_dev.double()).argmax(1).numpy()
    gold = [label2id[str(ex.label)] for ex in dev_examples]
    return {
        **classification_scores(gold, dev_pred.tolist(), len(labels)),
        "train_accuracy": float(np.mean(train_pred == y_train.numpy())),
        "features": features,
        "layer": layer,
        "train_examples": len(train_examples),
        "dev_examples": len(dev_examples),
        "encode_seconds": encode_seconds,
        "fit_seconds": time.perf_counter() - start,
    }
