"""A toy task for loop tests: 3-way classification of random vectors by a small MLP with dropout
and LayerNorm (so weight-decay groups, dropout RNG and clipping all matter)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from bertkit.train.loop import IndexBatches


class ToyModel(nn.Module):
    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Linear(8, 32)
        self.norm = nn.LayerNorm(32)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(32, 3)

    def forward(self, x, labels=None):
        logits = self.out(self.drop(torch.relu(self.norm(self.inp(x)))))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(loss=loss, logits=logits)


def toy_data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def toy_batches(
    x, y, batch_size: int, grad_accum: int = 1, rank: int = 0, world_size: int = 1, seed: int = 0
) -> IndexBatches:
    n = len(x)

    def plan(epoch):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]

    def collate(idx, epoch):
        return {"x": x[idx], "labels": y[idx]}

    return IndexBatches(plan, collate, grad_accum=grad_accum, rank=rank, world_size=world_size)


def accuracy_fn(x, y):
    def evaluate(model):
        return {"accuracy": float((model(x).logits.argmax(-1) == y).float().mean())}

    return evaluate
