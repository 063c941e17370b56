"""Training records: one JSON object per line (log.jsonl) and a PNG of the curves.

Each record has a "step"; training records carry "loss", "lr", throughput and the task's metrics,
evaluation records the same names prefixed "eval_". The plot draws one panel per quantity, train
and eval curves of the same quantity together (`mlm_acc` beside `eval_mlm_acc`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class JsonlLog:
    """Append-only log. On resume, records after the resumed step (written by the killed run,
    then lost with its unsaved steps) are dropped so the curve has no doubled segment."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    records = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
    return records


_SKIP = {"step", "epoch", "elapsed_s", "split"}


def plot_log(records: Iterable[dict[str, Any]] | str | os.PathLike, png: str | os.PathLike, title: str = "") -> Path:
    """One panel per quantity (loss, accuracy, lr, tokens/s, ...), x = optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(records, (str, os.PathLike)):
        records = read_log(records)
    records = list(records)
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for r in records:
        for key, value in r.items():
            if (
                key in _SKIP
                or not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                continue
            base = key[5:] if key.startswith("eval_") else key
            kind = "eval" if key.startswith("eval_") else "train"
            xs, ys = series.setdefault(base, {}).setdefault(kind, ([], []))
            xs.append(r["step"])
            ys.append(value)
    names = sorted(series, key=lambda k: (_order(k), k))
    cols = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for kind, (xs, ys) in sorted(series[name].items(), reverse=True):
            style = {"train": dict(lw=1.0, alpha=0.8), "eval": dict(marker="o", ms=3, lw=1.5)}[kind]
            ax.plot(xs, ys, label=kind, **style)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(series[name]) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
    return png


def _order(name: str) -> int:
    for i, prefix in enumerate(
        ("loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "accuracy", "lr", "grad_norm", "tokens_per_s")
    ):
        if name == prefix:
            return i
    return 50
