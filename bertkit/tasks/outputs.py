"""What a fine-tuning run leaves in its output folder, written so that a kill at any instant
leaves a complete model somewhere: the best checkpoint (`best/`, replaced whole), its promotion
to the folder itself, and the model card (README.md).

`save_best` writes a new best model beside the old one and swaps the folders by renames; until
the swap, `best/` is the previous complete model (and `best.old/` during the swap, which
`recover_best` puts back). `publish_best` links each file of `best/` into the output folder under
a temporary name and renames it into place, and only then removes `best/`: a run killed half way
still has the complete `best/`, and the next `--resume` (or the end of the run) repeats the move.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bertkit.files import atomic_write_text, fsync_folder

BEST, PARTIAL, OLD = "best", "best.partial", "best.old"


def recover_best(out: Path) -> None:
    """Put back a best model caught between the two renames of `save_best`."""
    if not (out / BEST).is_dir() and (out / OLD).is_dir():
        os.rename(out / OLD, out / BEST)
    shutil.rmtree(out / PARTIAL, ignore_errors=True)
    shutil.rmtree(out / OLD, ignore_errors=True)


def save_best(out: Path, write: Callable[[Path], None]) -> None:
    """Write a new best model with `write(folder)` and make it `out/best` without a moment lacking one."""
    partial, best, old = out / PARTIAL, out / BEST, out / OLD
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    for f in partial.iterdir():
        _fsync(f)
    fsync_folder(partial)
    if best.is_dir():
        os.rename(best, old)
    os.rename(partial, best)
    fsync_folder(out)
    shutil.rmtree(old, ignore_errors=True)


def publish_best(out: Path) -> bool:
    """Make the best model the output folder's model (see the module docstring); False when there is none."""
    recover_best(out)
    best = out / BEST
    if not best.is_dir():
        return False
    for f in sorted(best.iterdir()):
        tmp = out / f".{f.name}.publishing"
        tmp.unlink(missing_ok=True)
        os.link(f, tmp)
        os.replace(tmp, out / f.name)
    fsync_folder(out)
    shutil.rmtree(best)
    fsync_folder(out)
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- model card


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], digits: bool = True) -> list[str]:
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if digits and isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return lines


def write_card(out: Path, record: dict[str, Any]) -> None:
    """README.md in the output folder: base model, data, recipe, metrics per evaluation, command line."""
    history = record.get("history") or []
    metrics = [k for k, v in (history[0] if history else {}).items() if isinstance(v, float) and k != "epoch"]
    best = record.get("best") or {}
    lines = [
        f"# {record['task']} model fine-tuned with bertkit",
        "",
        f"- base model: `{record['base_model']}`",
        f"- task: `{record['task']}`" + (f", labels: {', '.join(record['labels'])}" if record.get("labels") else ""),
        f"- training data: `{record['train']}` ({record.get('train_examples', '?')} examples)",
        f"- dev data: `{record['dev']}` ({record.get('dev_examples', '?')} examples)",
        f"- steps: {record.get('steps', '?')}, training time {record.get('train_seconds', 0):.0f} s",
        "",
        "## Metrics on the dev data",
        "",
    ]
    if history:
        lines += _table(history, ["step", "epoch", *metrics])
        lines += ["", f"Kept: the evaluation at step {best.get('step')} (best {record.get('metric')})."]
    else:
        lines += ["No evaluation was run."]
    settings = record.get("settings", {})
    recipe = [{"setting": k, "value": v} for k, v in settings.items()]
    lines += ["", "## Recipe", "", *_table(recipe, ["setting", "value"], digits=False), "", "## Command", "", "```"]
    lines += [record.get("command") or "(called from Python)", "```", ""]
    atomic_write_text(out / "README.md", "\n".join(lines))
