"""Checkpoints that survive SIGKILL, a full disk and damage, and resume bit for bit.

A checkpoint is a folder `checkpoint-00001000/` holding
    model.safetensors     the weights (tied weights stored once)
    optimizer.pt          optimizer, scheduler and gradient-scaler state and every rank's torch RNG
                          state (tensors and plain containers only: loaded with weights_only=True)
    trainer_state.json    step, data position, Python and NumPy RNG states, the loop's own state,
                          and whether every weight was finite
It is written under a temporary name, every file is fsync'ed, and only then is the folder renamed
into place: a run killed at any instant leaves either the previous checkpoints or the new one,
never half of one. Saving a step that already exists (after a resume) first moves the old folder
aside to `.checkpoint-<step>.old-<pid>` and renames the new one in; a kill between the two renames
leaves the old one there, which `checkpoints()` still offers and the next save puts back.

The newest K are kept, and never fewer than one with finite weights: pruning does not delete the
last good state while newer ones are poisoned.

Resuming (`resume`) reads the newest checkpoint completely (weights, optimizer file, every key of
the trainer state) before touching the model, and walks back to the newest one that reads, with a
one-line warning naming what was wrong with each one it skips.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bertkit.errors import BertkitError, InputFileError
from bertkit.files import fsync_folder
from bertkit.log import get_logger

logger = get_logger(__name__)

_NAME = re.compile(r"^checkpoint-(\d{8})$")
_MOVED_ASIDE = re.compile(r"^\.(checkpoint-\d{8})\.old-\d+$")
_STATE_KEYS = ("step", "loop", "rng")
_BLOB_KEYS = ("optimizer", "scheduler", "torch_rng", "cuda_rng")


def capture_rng() -> dict[str, Any]:
    """This process's random states: torch (and CUDA) as tensors, Python and NumPy as JSON."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    assert not isinstance(keys, str)  # legacy=True: the MT19937 key array
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Checkpoint folders that claim to be complete, oldest first (a step moved aside by a save
    that was killed counts while its step has no other folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found: dict[str, Path] = {}
    for p in folder.iterdir():
        if not (p.is_dir() and (p / "trainer_state.json").is_file()):
            continue
        aside = _MOVED_ASIDE.match(p.name)
        if _NAME.match(p.name):
            found[p.name] = p
        elif aside and aside.group(1) not in found and not (folder / aside.group(1)).exists():
            found[aside.group(1)] = p
    return [found[name] for name in sorted(found)]


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under their own names, oldest first."""
    return [p for p in checkpoints(folder) if _NAME.match(p.name)]


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    found = checkpoints(folder)
    return found[-1] if found else None


# saving ------------------------------------------------------------------------------------------


def save_checkpoint(
    folder: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    rng_states: list[dict[str, Any]],
    keep: int = 3,
    scaler: Any = None,
) -> Path:
    """Write checkpoint-<step>/ atomically and prune all but the newest `keep` (and the last finite).

    `rng_states` holds one `capture_rng()` per rank (gathered by the caller), so a multi-process
    run restores each rank's dropout stream. A failed write (a full disk) removes its temporary
    folder and leaves every earlier checkpoint as it was.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _tidy(folder)
    final = folder / f"checkpoint-{step:08d}"
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        finite = save_weights(model, tmp / "model.safetensors")
        blob = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "torch_rng": [s["torch"] for s in rng_states],
            "cuda_rng": [s["cuda"] for s in rng_states],
        }
        torch.save(blob, tmp / "optimizer.pt")
        rng = [{"python": s["python"], "numpy": s["numpy"]} for s in rng_states]
        state = dict(trainer_state, step=step, finite=finite, rng=rng)
        (tmp / "trainer_state.json").write_text(json.dumps(state))
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        _move_into_place(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BertkitError(
            f"{final}: cannot write the checkpoint ({err.strerror or err}); the earlier checkpoints are intact: "
            "free space and continue with --resume"
        ) from err
    prune(folder, keep)
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename tmp to final; a final that exists is moved aside first and deleted only after."""
    aside = None
    if final.exists():
        aside = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(tmp, final)
    fsync_folder(final.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _tidy(folder: Path) -> None:
    """Leftovers of runs killed mid-save: temporary folders go; a step moved aside comes back."""
    for p in folder.glob(".checkpoint-*"):
        aside = _MOVED_ASIDE.match(p.name)
        if aside and not (folder / aside.group(1)).exists() and (p / "trainer_state.json").is_file():
            os.replace(p, folder / aside.group(1))
        else:
            shutil.rmtree(p, ignore_errors=True)


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, never the newest one with finite weights."""
    found = list_checkpoints(folder)
    if keep <= 0 or len(found) <= keep:
        return
    kept = found[-keep:]
    if not any(_is_finite(p) for p in kept):
        kept += [p for p in found[:-keep] if _is_finite(p)][-1:]
    for old in found:
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)


def _is_finite(path: Path) -> bool:
    try:
        return bool(json.loads((path / "trainer_state.json").read_text()).get("finite", True))
    except (OSError, ValueError):
        return False


def save_weights(model: torch.nn.Module, path: Path) -> bool:
    """state_dict -> safetensors; a tensor seen under several names (tied weights) is stored once.

    Returns whether every floating-point tensor is finite.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, value in model.state_dict().items():
        key = (value.data_ptr(), tuple(value.shape), tuple(value.stride()), value.dtype)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()  # views (fused qkv parts) become their own
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)})
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


# loading -------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A checkpoint read whole into memory, checked, not yet applied to anything."""

    path: Path
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    blob: dict[str, Any]


def read_checkpoint(path: str | os.PathLike, loop_fields: Sequence[str] = ()) -> Checkpoint:
    """Read and check every file of a checkpoint; InputFileError (one line) naming what is wrong."""
    path = Path(path)
    state_file = path / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as err:
        raise InputFileError(state_file, f"unreadable ({_first_line(err)})") from None
    missing = [k for k in _STATE_KEYS if k not in state] if isinstance(state, dict) else list(_STATE_KEYS)
    if not missing:
        missing = [f"loop.{k}" for k in loop_fields if k not in state["loop"]]
    if missing:
        raise InputFileError(state_file, f"lacks {', '.join(missing)}")
    tensors = _read_weights(path / "model.safetensors")
    blob_file = path / "optimizer.pt"
    try:
        blob = torch.load(blob_file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many kinds (EOFError, RuntimeError, UnpicklingError, ...)
        raise InputFileError(blob_file, f"unreadable ({_first_line(err)})") from None
    lacking = [k for k in _BLOB_KEYS if not isinstance(blob, dict) or k not in blob]
    if lacking:
        raise InputFileError(blob_file, f"lacks {', '.join(lacking)}")
    if not state["rng"] or len(state["rng"]) != len(blob["torch_rng"]):
        raise InputFileError(state_file, "its random states do not match optimizer.pt's")
    return Checkpoint(path, state, tensors, blob)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as fh:
            aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
    except Exception as err:  # safetensors raises its own SafetensorError besides OSError
        raise InputFileError(path, f"unreadable ({_first_line(err)})") from None
    for name, source in aliases.items():
        tensors[name] = tensors[source]
    return tensors


def apply_checkpoint(
    ckpt: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    rank: int = 0,
    restore_random: bool = True,
) -> dict[str, Any]:
    """Load a read checkpoint into the model (and optimizer, scheduler, scaler, RNG); returns trainer_state."""
    try:
        model.load_state_dict(ckpt.tensors, strict=True)
        if optimizer is not None:
            optimizer.load_state_dict(ckpt.blob["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise InputFileError(
            ckpt.path, f"does not fit this model ({_first_line(err)[:200]}); was it made with another --config?"
        ) from None
    if scheduler is not None and ckpt.blob["scheduler"] is not None:
        scheduler.load_state_dict(ckpt.blob["scheduler"])
    if scaler is not None and ckpt.blob.get("scaler"):
        scaler.load_state_dict(ckpt.blob["scaler"])
    if restore_random:
        n = len(ckpt.blob["torch_rng"])
        r = rank % n
        restore_rng({"torch": ckpt.blob["torch_rng"][r], "cuda": ckpt.blob["cuda_rng"][r], **ckpt.state["rng"][r]})
    return ckpt.state


def load_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    rank: int = 0,
    restore_random: bool = True,
    scaler: Any = None,
) -> dict[str, Any]:
    """Read one checkpoint and load it in place; returns trainer_state."""
    return apply_checkpoint(read_checkpoint(path), model, optimizer, scheduler, scaler, rank, restore_random)


def newest_readable(folder: str | os.PathLike, loop_fields: Sequence[str] = ()) -> Checkpoint | None:
    """The newest checkpoint in `folder` that reads whole; each damaged newer one is skipped with a
    one-line warning. None when the folder holds none; an error when none of them reads."""
    found = checkpoints(folder)
    problems = []
    for path in reversed(found):
        try:
            ckpt = read_checkpoint(path, loop_fields)
        except InputFileError as err:
            logger.warning(f"skipping checkpoint {path.name}: {err.problem} ({Path(str(err.path)).name})")
            problems.append(str(err))
            continue
        return ckpt
    if problems:
        raise BertkitError(
            f"{folder}: none of the {len(found)} checkpoint(s) can be read (newest: {problems[0]}); "
            "start a new run in another folder"
        )
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
