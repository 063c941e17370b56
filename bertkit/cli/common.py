"""Flags that several commands share, declared once so they are spelled and explained the same way.

Every command module builds its parser from these helpers instead of repeating `add_argument`
calls: the device and precision switches, threads, progress bars, `--overwrite`, and renamed
flags that stay accepted (hidden from --help) for one release with a one-line deprecation note.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bertkit.constants import DEFAULT_SEED

DEVICE_HELP = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps"


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_precision(p: argparse.ArgumentParser, inference: bool = False) -> None:
    """--precision fp32|bf16|fp16 (inference also int8), with --bf16 kept as an alias."""
    choices = ["fp32", "bf16", "fp16"] + (["int8"] if inference else [])
    what = "arithmetic" if inference else "autocast precision while training"
    p.add_argument(
        "--precision",
        default="fp32",
        choices=choices,
        help=f"{what}: bf16 on GPUs and CPUs with AVX-512 BF16 / AMX, fp16 on GPUs"
        + ("; int8: dynamic int8 matmuls on the CPU" if inference else "")
        + "; refused where the hardware would emulate it",
    )
    p.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help=argparse.SUPPRESS)


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's)")


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (data order, masks, new weights)")


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it is not empty")


def add_renamed(p: argparse.ArgumentParser, old: str, new: str, **kwargs: Any) -> None:
    """Accept `old` as a hidden alias of `new` (same dest) with a one-line deprecation note."""
    dest = new.lstrip("-").replace("-", "_")
    p.add_argument(old, dest=dest, action=_Renamed, new=new, help=argparse.SUPPRESS, **kwargs)


class _Renamed(argparse.Action):
    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"bertkit: note: {option_string} is renamed {self.new}; the old spelling goes away in the next release",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def apply_threads(args: argparse.Namespace) -> None:
    """torch.set_num_threads(--threads) when given (imports torch only then)."""
    if getattr(args, "threads", None):
        import torch  # lazy: keeps bertkit --help free of torch

        torch.set_num_threads(args.threads)
