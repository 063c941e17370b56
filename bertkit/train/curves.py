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

from bertkit.errors import BertkitError
from bertkit.files import atomic_path, atomic_write_text


class JsonlLog:
    """Append-only log. On resume, records after the resumed step (written by the killed run,
    then lost with its unsaved steps) are dropped so the curve has no doubled segment; that
    rewrite replaces the file atomically, so a kill or a full disk leaves the old log whole."""

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if resume_step is None:
                atomic_write_text(self.path, "")
            elif self.path.exists():
                kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
                atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        except OSError as err:
            raise BertkitError(
                f"{self.path}: cannot write the training log ({err.strerror or err}); it is unchanged"
            ) from err

    def write(self, record: dict[str, Any]) -> None:
        # an append: a kill can cut only the last line, which read_log skips
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
    return records


_SKIP = {"step", "epoch", "elapsed_s", "split"}
_STYLES: dict[str, dict[str, Any]] = {"train": {"lw": 1.0, "alpha": 0.8}, "eval": {"marker": "o", "ms": 3, "lw": 1.5}}


def plot_log(records: Iterable[dict[str, Any]] | str | os.PathLike, png: str | os.PathLike, title: str = "") -> Path:
    """One panel per quantity (loss, accuracy, lr, tokens/s, ...), x = optimizer step.

    Drawn on a bare matplotlib Figure (no pyplot), so the host's backend and open figures are
    left alone (a notebook keeps its inline backend).
    """
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only plots need it

    entries = read_log(records) if isinstance(records, (str, os.PathLike)) else list(records)
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for r in entries:
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
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, names):
        for kind, (xs, ys) in sorted(series[name].items(), reverse=True):
            style = _STYLES[kind]
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
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return png


def _order(name: str) -> int:
    for i, prefix in enumerate(
        ("loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "accuracy", "lr", "grad_norm", "tokens_per_s")
    ):
        if name == prefix:
            return i
    return 50
