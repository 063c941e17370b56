"""The sums behind one log record: what the steps since the last record saw, reduced over ranks."""

from __future__ import annotations

from typing import Any

import torch

from bertkit.train.distributed import DistEnv

# TrainState is only read here (step, epoch position, seconds); typed loosely to keep the
# dependency one way (loop -> window).
State = Any


class Window:
    """Sums over the steps since the last log record, reduced over ranks when flushed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, list[float]] = {}
        self.step_losses: list[float] = []
        self.grad_norms: list[float] = []
        self.tokens = 0.0
        self.seconds = 0.0
        self.steps = 0
        self.skipped = 0

    def add(self, name: str, value: float, count: float) -> None:
        s = self.sums.setdefault(name, [0.0, 0.0])
        s[0] += value
        s[1] += count

    def add_batch(self, sums: dict[str, torch.Tensor], metrics: dict[str, tuple[float, float]]) -> None:
        """One micro-batch's loss sums (their counts come once per step) and metric (sum, count) pairs."""
        for k, v in sums.items():
            self.add(k, float(v.detach()), 0.0)
        for k, (s, c) in metrics.items():
            self.add(k, float(s), float(c))

    def add_counts(self, totals: dict[str, float], world_size: int) -> None:
        """Each loss term's global denominator of one step, shared out so the ranks' sum is it once."""
        for k, total in totals.items():
            self.add(k, 0.0, total / world_size)

    def flush(self, env: DistEnv, state: State, steps_per_epoch: int, optimizer: torch.optim.Optimizer) -> dict:
        names = sorted(self.sums)
        flat = [x for n in names for x in self.sums[n]] + [sum(self.step_losses), self.tokens]
        flat = env.all_reduce(flat)
        record: dict[str, Any] = {
            "step": state.step,
            "epoch": round(state.epoch + state.batch_in_epoch / steps_per_epoch, 4),
        }
        for i, n in enumerate(names):
            if n == "loss":
                continue
            s, c = flat[2 * i], flat[2 * i + 1]
            if c > 0:
                record[n] = s / c
        record["loss"] = flat[-2] / max(self.steps, 1)
        record["lr"] = optimizer.param_groups[0]["lr"]
        if self.grad_norms:
            record["grad_norm"] = sum(self.grad_norms) / len(self.grad_norms)
        if self.skipped:
            record["skipped"] = self.skipped
        record["tokens"] = flat[-1]
        record["tokens_per_s"] = flat[-1] / self.seconds if self.seconds > 0 else 0.0
        record["elapsed_s"] = round(state.train_seconds, 2)
        self.reset()
        return record
