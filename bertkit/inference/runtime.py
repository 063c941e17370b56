"""Which model runs, where, and in which arithmetic: the inference side of the device and precision rules.

`load` turns a `model=` argument (folder, hub name or loaded model) into (model, tokenizer) through
bertkit.loading, keeping the last few folders loaded so repeated calls do not re-read them.
`prepare` returns the module to run for a dtype and a device: the model itself when nothing
changes, else a converted copy (cached per model, rebuilt when its weights change), so a user's
model is never converted or moved in place. dtype: float32 (exact), bfloat16 / float16 (refused
by bertkit.hardware where the hardware would emulate them) or "int8" (CPU only: dynamic int8
matmuls for the big linear layers, see bertkit.model.quantize).
"""

from __future__ import annotations

import copy
import os
import weakref
from pathlib import Path
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.export.runner import onnx_backend
from bertkit.hardware import cpu_has_native, normalize_precision, resolve_device, resolve_precision
from bertkit.hub import resolve_folder
from bertkit.loading import HUB_OPTIONS, load_folder
from bertkit.model.quantize import quantize_int8
from bertkit.sentence_folder import transformer_folder

DTYPE_KINDS = ("float32", "bfloat16", "float16", "int8")
_TORCH = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_KEEP_LOADED = 6  # folders kept loaded: enough for a notebook switching between a few models
_LOADED: dict[tuple[str, ...], tuple[Any, Any]] = {}
_PREPARED: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[str, str], tuple[tuple, torch.nn.Module]]] = (
    weakref.WeakKeyDictionary()
)


def load(
    model: Any,
    tokenizer: Any = None,
    head: str = "BertModel",
    backend: str = "torch",
    dtype: Any = None,
    device: Any = None,
    **hub: Any,
) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder or hub name (loaded once, then reused) or objects.

    With no tokenizer, the model's folder provides it (vocab.txt / tokenizer.json). hub:
    revision, token, cache_dir, local_files_only (bertkit.hub.resolve_folder). backend="onnx":
    model is a local folder made by `bertkit export onnx`, run by onnxruntime on the CPU (dtype
    is fixed there); `device` is checked for it only (prepare() places a torch model).
    """
    unknown = set(hub) - set(HUB_OPTIONS)
    if unknown:
        raise BertkitError(f"unknown loading option(s) {sorted(unknown)}; use {', '.join(HUB_OPTIONS)}")
    if backend != "torch":
        check_onnx_options(device, hub)
        return onnx_backend(model, tokenizer, head, backend, dtype)
    if not isinstance(model, (str, os.PathLike)):
        loaded, tok, _ = load_folder(model, head, tokenizer)
        return loaded, tok
    folder = transformer_folder(resolve_folder(model, **hub))
    named = tokenizer if isinstance(tokenizer, (str, os.PathLike)) else None
    # a folder written again (a new fine-tuning run into it) is read again
    stamp = str(max((f.stat().st_mtime_ns for f in folder.iterdir() if f.is_file()), default=0))
    key = (head, str(folder.resolve()), stamp, "" if named is None else str(named))
    if key not in _LOADED:
        if len(_LOADED) >= _KEEP_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        loaded, tok, _ = load_folder(folder, head, named, **hub)
        _LOADED[key] = (loaded.eval(), tok)
    loaded, tok = _LOADED[key]
    return loaded, tokenizer if tokenizer is not None and named is None else tok


def check_onnx_options(device: Any, hub: dict[str, Any]) -> torch.device:
    """The device backend="onnx" runs on (the CPU), or a one-line refusal of what it cannot honour."""
    if hub:
        raise BertkitError(
            f"backend='onnx' reads a local folder made by `bertkit export onnx`; drop {', '.join(sorted(hub))}"
        )
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cpu")
    where = resolve_device(device, flag="device")
    if where.type != "cpu":
        raise BertkitError(
            f"backend='onnx' runs on the CPU (onnxruntime's CPU provider); drop device={device!r} "
            "or use backend='torch' on that device"
        )
    return where


def model_folder(model: Any) -> Path | None:
    """The folder a model came from (a path argument, or a loaded model's name_or_path)."""
    name = model if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", None)
    if name is None:
        return None
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def target_device(model: Any, device: Any = None) -> torch.device:
    """device=None: where a loaded model already is, else "auto" (CUDA, MPS, then the CPU)."""
    if device is None:
        if isinstance(model, torch.nn.Module):
            first = next(model.parameters(), None)
            return first.device if first is not None else torch.device("cpu")
        device = "auto"
    return resolve_device(device, flag="device")


def dtype_kind(dtype: Any) -> str:
    """'float32' | 'bfloat16' | 'float16' | 'int8' from any accepted spelling (None: float32)."""
    if dtype in (torch.qint8, torch.int8) or (isinstance(dtype, str) and dtype.strip().lower() in ("int8", "qint8")):
        return "int8"
    try:
        name = normalize_precision(dtype)
    except BertkitError:
        raise BertkitError(
            f"dtype {dtype!r} is not supported; use float32 (None), bfloat16, float16 or 'int8'"
        ) from None
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[name]


def check_dtype(kind: str, device: torch.device) -> None:
    """One-line refusal where `kind` cannot run well on `device` (the hardware rule for inference)."""
    if kind == "int8":
        if device.type != "cpu":
            raise BertkitError(f"dtype int8 runs on the CPU only (fbgemm kernels); on {device} use float16 or bfloat16")
        return
    resolve_precision({"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[kind], device, "dtype", False)


def prepare(
    model: torch.nn.Module,
    dtype: Any = None,
    calibration: list[dict] | None = None,
    device: Any = None,
) -> torch.nn.Module:
    """The module to run for `dtype` on `device` (default: where the model is).

    The model itself for float32 where it already is, else a converted copy cached per model;
    the cache notices later changes to the original's weights (training) and rebuilds the copy.
    int8 calibrates its smoothing on `calibration` batches (the first texts it is given).
    """
    kind = dtype_kind(dtype)
    where = target_device(model, device)
    check_dtype(kind, where)
    current = next(model.parameters(), None)
    if kind == "float32" and (current is None or (current.dtype == torch.float32 and current.device == where)):
        return model
    fingerprint = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cached = _PREPARED.setdefault(model, {}).get((kind, str(where)))
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    if kind == "int8":
        prepared = quantize_int8(copy.deepcopy(model).float().cpu(), calibration=calibration)
    else:
        prepared = copy.deepcopy(model).to(device=where, dtype=_TORCH[kind])
    prepared.eval()
    _PREPARED[model][(kind, str(where))] = (fingerprint, prepared)
    return prepared


def half_is_native(kind: str = "bfloat16") -> bool:
    """Whether this CPU multiplies bfloat16 (or float16) matrices in hardware.

    Kept for callers outside inference; the rule itself is bertkit.hardware.cpu_has_native.
    """
    return cpu_has_native(normalize_precision(kind))
