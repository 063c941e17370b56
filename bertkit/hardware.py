"""Where and in which arithmetic bertkit runs: one device rule and one precision rule for every command.

Device: `auto` picks CUDA, then Apple's MPS, then the CPU; `cpu`, `cuda`, `cuda:N`, `mps` (or an
int N for cuda:N, or a torch.device) ask for one. Asking for a device this machine does not have
is a one-line BertkitError, never a fallback that silently runs elsewhere.

Precision: `fp32` (exact), `bf16` (bfloat16 autocast: matmuls in bf16, weights and optimizer
state in fp32) and `fp16` (float16 autocast with a gradient scaler, GPUs). Reduced precision is
refused where the hardware would only emulate it: a CPU without AVX-512 BF16 or AMX multiplies
bf16 matrices in software, far slower than fp32 (bench/infer.py prints the rate on this machine),
and CPUs have no fp16 training path. On CUDA, bf16 needs compute capability 8.0 (Ampere) or newer.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.precision import PRECISIONS as PRECISIONS  # re-exported: the names beside the hardware rule
from bertkit.precision import normalize_precision

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# ---------------------------------------------------------------------------------------- device
def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | int | torch.device | None = "auto", flag: str = "--device") -> torch.device:
    """The torch.device for `spec` (see the module docstring); one-line error when it is absent."""
    if isinstance(spec, torch.device):
        device = spec
    elif isinstance(spec, int):
        device = torch.device("cuda", spec)
    else:
        name = "auto" if spec is None else str(spec).strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", torch.cuda.current_device())
            if mps_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise BertkitError(f"{flag} {spec}: not a device; use one of {', '.join(DEVICES)}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BertkitError(
                f"{flag} {spec}: no CUDA GPU is visible to PyTorch on this machine "
                f"(torch {torch.__version__}); use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise BertkitError(f"{flag} {spec}: this machine has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1})")
        return torch.device("cuda", index)
    if device.type == "mps" and not mps_available():
        raise BertkitError(f"{flag} {spec}: Apple's MPS backend is not available here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise BertkitError(f"{flag} {spec}: device type {device.type!r} is not supported; use {', '.join(DEVICES)}")
    return device


# ------------------------------------------------------------------------------------- precision
@functools.cache
def cpu_has_native(precision: str = "bf16") -> bool:
    """Whether this CPU multiplies bf16 (AVX-512 BF16 or AMX) or fp16 (AMX-FP16) matrices in hardware."""
    cpu = getattr(torch, "cpu", None)
    try:
        if precision == "fp16":
            return bool(cpu._is_amx_fp16_supported())  # type: ignore[union-attr]
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())  # type: ignore[union-attr]
    except AttributeError:  # a torch build without the probes: read the kernel's flags instead
        flags = cpu_flags()
        wanted = {"fp16": {"amx_fp16"}, "bf16": {"avx512_bf16", "amx_bf16"}}[precision]
        return bool(flags & wanted)


def is_native(precision: str, device: torch.device | str = "cpu") -> bool:
    """Whether `precision` runs at hardware speed on `device` (fp32 always does)."""
    precision = normalize_precision(precision)
    device = torch.device(device)
    if precision == "fp32":
        return True
    if device.type == "cuda":
        return precision == "fp16" or bool(torch.cuda.is_bf16_supported())
    if device.type == "mps":
        return True
    return cpu_has_native(precision)


def resolve_precision(
    precision: str | torch.dtype | None, device: torch.device | str, flag: str = "--precision", training: bool = True
) -> str:
    """The precision to run, or a one-line error where the hardware would emulate it."""
    name = normalize_precision(precision)
    device = torch.device(device)
    if name == "fp32":
        return name
    if device.type == "cpu":
        if name == "fp16" and training:
            raise BertkitError(
                f"{flag} fp16: float16 training needs a GPU (loss scaling on CPUs is not supported); "
                f"use {flag} bf16 on a CPU with AVX-512 BF16 / AMX, or fp32"
            )
        if not cpu_has_native(name):
            kind = "bfloat16 (AVX-512 BF16 / AMX)" if name == "bf16" else "float16 (AMX-FP16)"
            raise BertkitError(
                f"{flag} {name}: this CPU ({cpu_name()}) has no native {kind}, where {name} matmuls are "
                f"emulated and much slower than fp32; use {flag} fp32 (or a GPU / a CPU that has it)"
            )
    if device.type == "cuda" and name == "bf16" and not torch.cuda.is_bf16_supported():
        raise BertkitError(
            f"{flag} bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support (needs compute "
            f"capability 8.0+); use {flag} fp16 or fp32"
        )
    return name


def autocast(device: torch.device | str, precision: str = "fp32") -> contextlib.AbstractContextManager[Any]:
    """Autocast to bf16/fp16 for `precision`; a no-op context for fp32."""
    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=TORCH_DTYPES[precision])


def grad_scaler(device: torch.device | str, precision: str) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 training (its small exponent range underflows gradients); else None."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


# ------------------------------------------------------------------------------------ description
@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device | str = "cpu") -> str:
    """One line naming the hardware, for benchmark output and closing notes."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_fp16")
    flags = " ".join(f for f in wanted if f in cpu_flags()) or "no AVX2"
    return f"{cpu_name()}, {torch.get_num_threads()} threads, flags: {flags}; torch {torch.__version__}"
