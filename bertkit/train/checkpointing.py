"""Checkpoints that survive SIGKILL and resume bit for bit.

A checkpoint is a folder `checkpoint-00001000/` holding
    model.safetensors     the weights (tied weights stored once)
    optimizer.pt          optimizer + scheduler state and every rank's torch RNG state
                          (tensors and plain containers only: loaded with weights_only=True)
    trainer_state.json    step, data position, Python and NumPy RNG states, the loop's own state
It is written under a temporary name, every file is fsync'ed, and only then is the folder renamed
into place: a run killed at any instant leaves either the previous checkpoints or the new one,
never half of one. The newest K are kept.

Exact resume needs everything that decides the next steps: the weights, Adam's moments, the
schedule's position, the data position (the loop stores it), and the random streams that
dropout (torch), user code (random, numpy) and GPU kernels draw from.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.errors import InputFileError

_NAME = re.compile(r"^checkpoint-(\d{8})$")


def capture_rng() -> dict[str, Any]:
    """This process's random states: torch (and CUDA) as tensors, Python and NumPy as JSON."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
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


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def save_checkpoint(
    folder: str | os.PathLike,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    rng_states: list[dict[str, Any]],
    keep: int = 3,
) -> Path:
    """Write checkpoint-<step>/ atomically and prune all but the newest `keep`.

    `rng_states` holds one `capture_rng()` per rank (gathered by the caller), so a multi-process
    run restores each rank's dropout stream.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"checkpoint-{step:08d}"
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_weights(model, tmp / "model.safetensors")
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "torch_rng": [s["torch"] for s in rng_states],
            "cuda_rng": [s["cuda"] for s in rng_states],
        },
        tmp / "optimizer.pt",
    )
    state = dict(trainer_state, step=step, rng=[{"python": s["python"], "numpy": s["numpy"]} for s in rng_states])
    (tmp / "trainer_state.json").write_text(json.dumps(state))
    for f in tmp.iterdir():
        _fsync(f)
    _fsync(tmp)
    if final.exists():  # the same step saved again (after a resume): replace it
        trash = folder / f".{final.name}.old-{os.getpid()}"
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(folder)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".checkpoint-*"):  # leftovers of runs killed mid-save
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    rank: int = 0,
    restore_random: bool = True,
) -> dict[str, Any]:
    """Load weights (and optimizer, scheduler, this rank's RNG) in place; returns trainer_state."""
    path = Path(path)
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(path / "trainer_state.json", f"unreadable checkpoint state ({err})") from None
    load_weights(model, path / "model.safetensors")
    blob = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(blob["optimizer"])
    if scheduler is not None and blob["scheduler"] is not None:
        scheduler.load_state_dict(blob["scheduler"])
    if restore_random:
        n = len(blob["torch_rng"])
        r = rank % n
        restore_rng({"torch": blob["torch_rng"][r], "cuda": blob["cuda_rng"][r], **state["rng"][r]})
    return state


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """state_dict -> safetensors; a tensor seen under several names (tied weights) is stored once."""
    from safetensors.torch import save_file

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


def load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as fh:
            aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
        for name, source in aliases.items():
            tensors[name] = tensors[source]
        model.load_state_dict(tensors, strict=True)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise InputFileError(
            path,
            f"cannot load into this model ({str(err).splitlines()[0][:200]}); "
            "was the checkpoint made with another --config?",
        ) from None
