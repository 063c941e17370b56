"""What a fine-tuning run adds to the shared loop through its callback hooks: the evaluation
history (kept in finetune.json after every evaluation, so a resumed run knows it), early
stopping, and TensorBoard curves beside log.jsonl."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError
from bertkit.log import get_logger

logger = get_logger(__name__)


class History:
    """Every dev evaluation with its step and epoch; `full` is set by the run's eval function
    just before the loop reports the evaluation (it holds per-type breakdowns the loop drops)."""

    def __init__(
        self,
        steps_per_epoch: int,
        on_change: Callable[[list[dict[str, Any]]], None],
        kept: Sequence[dict[str, Any]] = (),
    ):
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.on_change = on_change
        self.records: list[dict[str, Any]] = list(kept)
        self.full: dict[str, Any] = {}

    def on_eval(self, state: Any, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        epoch = round(state.step / self.steps_per_epoch, 4)
        self.records = [r for r in self.records if r["step"] < state.step]  # re-done after a resume
        self.records.append({"step": state.step, "epoch": epoch, **self.full})
        self.on_change(self.records)


def best_index(history: list[dict[str, Any]], metric: str) -> int | None:
    """The first evaluation with the highest `metric` (the one the loop kept), or None."""
    if not history:
        return None
    return max(range(len(history)), key=lambda i: (history[i][metric], -i))


class EarlyStopping:
    """Stop after `patience` evaluations in a row without a better dev `metric` than the best so far."""

    def __init__(self, patience: int, metric: str, history: Sequence[dict[str, Any]] = ()):
        self.patience, self.metric = patience, metric
        self.best: float | None = None
        self.waited = 0
        for record in history:  # a resumed run continues the count
            self._see(record[metric])

    def _see(self, value: float) -> None:
        if self.best is None or value > self.best:
            self.best, self.waited = value, 0
        else:
            self.waited += 1

    def on_eval(self, state: Any, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        self._see(metrics[self.metric])
        if self.waited >= self.patience:
            logger.info(
                f"early stopping at step {state.step}: no better dev {self.metric} in {self.waited} evaluations "
                f"(best {self.best:.4g})"
            )
            state.should_stop = True


def require_tensorboard() -> None:
    """A one-line error, before any work, when the tensorboard package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise BertkitError("--report-to tensorboard needs the tensorboard package: pip install 'bertkit[tensorboard]'")


def tensorboard_writer(folder: Path) -> Any:
    """A torch.utils.tensorboard SummaryWriter writing into `folder`."""
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter  # lazy: optional extra [tensorboard]

    return SummaryWriter(log_dir=str(folder))


class TensorBoard:
    """The loop's training records and the dev metrics as TensorBoard scalars (OUT/runs)."""

    def __init__(self, folder: Path):
        self.writer = tensorboard_writer(folder)

    def on_step_end(self, state: Any, record: dict[str, Any] | None) -> None:
        if record:
            for name, value in record.items():
                if name != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{name}", value, state.step)

    def on_eval(self, state: Any, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"eval/{name}", value, state.step)
        self.writer.flush()

    def on_train_end(self, state: Any) -> None:
        self.writer.close()
