"""What the training loop iterates over: per optimizer step, the micro-batches this process runs.

`BatchSource` is the protocol (`steps_per_epoch()`, `epoch(e, start)`); `IndexBatches` builds
one from a per-epoch plan of global batches (lists of example indices) and a collate function.
It cuts every global batch into world_size x grad_accum micro-batches, so one process with
accumulation and N processes see exactly the same global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from bertkit.errors import BertkitError

Batch = dict[str, Any]


class BatchSource(Protocol):
    def steps_per_epoch(self) -> int: ...
    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[Batch]]: ...


class IndexBatches:
    """Per-epoch plan of global batches -> this rank's micro-batches.

    plan(epoch) -> sequence of global batches (each a sequence of example indices);
    collate(indices, epoch) -> a batch dict of tensors. A global batch with fewer examples than
    world_size x grad_accum (a tiny tail) is skipped, so every rank runs the same number of steps.
    """

    def __init__(
        self,
        plan: Callable[[int], Sequence[Sequence[int]]],
        collate: Callable[[Sequence[int], int], Batch],
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ):
        if grad_accum < 1:
            raise BertkitError(f"grad_accum must be at least 1, got {grad_accum}")
        self.plan, self.collate = plan, collate
        self.grad_accum, self.rank, self.world_size = grad_accum, rank, world_size
        self._cache: tuple[int, list] | None = None

    def _steps(self, epoch: int) -> list:
        if self._cache is None or self._cache[0] != epoch:
            parts = self.grad_accum * self.world_size
            self._cache = (epoch, [b for b in self.plan(epoch) if len(b) >= parts])
        return self._cache[1]

    def steps_per_epoch(self) -> int:
        return len(self._steps(0))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[Batch]]:
        parts = self.grad_accum * self.world_size
        for global_batch in self._steps(epoch)[start:]:
            pieces = np.array_split(np.asarray(global_batch), parts)
            mine = pieces[self.rank * self.grad_accum : (self.rank + 1) * self.grad_accum]
            yield [self.collate(p.tolist(), epoch) for p in mine]


def rows(batch: Batch) -> int:
    """The batch dimension: the first dimension of the batch's first tensor that has one."""
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    raise BertkitError("a batch must hold at least one tensor with a batch dimension")


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
