"""Precision names: every accepted spelling -> 'fp32' | 'bf16' | 'fp16'.

The spelling rule only; whether a device runs a precision natively is bertkit.hardware's
business. Kept free of torch so settings objects and the CLI's parsers can check a precision
without loading it (a torch.dtype is read by its name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bertkit.errors import BertkitError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_NAMES = {  # every accepted spelling -> the canonical name
    "fp32": "fp32",
    "float32": "fp32",
    "32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "16": "fp16",
}


def normalize_precision(precision: str | torch.dtype | None) -> str:
    """'fp32' | 'bf16' | 'fp16' from any accepted spelling or torch dtype (None: fp32)."""
    if precision is None:
        return "fp32"
    key = str(precision).strip().lower().removeprefix("torch.")  # torch.bfloat16 -> "bfloat16"
    if key not in PRECISION_NAMES:
        raise BertkitError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return PRECISION_NAMES[key]
