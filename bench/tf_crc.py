"""CRC-32C speed when checking a TensorFlow checkpoint: the wheel vs numpy lanes vs the pure loop.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/tf_crc.py [--mb 64] [--rounds 3]

Writes a bundle of --mb MiB of float32 tensors (BERT-large FFN kernels) with bertkit.checkpoint.tf_write,
then reads every tensor back through TFCheckpoint (CRC checked) with each CRC implementation, and
times the CRC alone over the same bytes. The byte-at-a-time reference runs on an 8 MB slice (it
is the slow one). Best of --rounds; all in one run, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bertkit import hardware
from bertkit.checkpoint import crc32c as C
from bertkit.checkpoint.tf_bundle import TFCheckpoint
from bertkit.checkpoint.tf_write import write_tf_checkpoint


def bundle(folder: Path, mb: int) -> Path:
    rng = np.random.default_rng(0)
    arrays, size, i = {}, 0, 0
    while size < mb * 2**20:
        # BERT-large feed-forward kernels, 16 MiB each
        arrays[f"bert/encoder/layer_{i}/intermediate/dense/kernel"] = rng.standard_normal(
            (1024, 4096), dtype=np.float32
        )
        size += 1024 * 4096 * 4
        i += 1
    return write_tf_checkpoint(folder / "model.ckpt", arrays)


def best(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def read_all(prefix: Path, crc: Callable[[Any, int], int] | None) -> None:
    saved = C._FAST
    C._FAST = ("bench", crc) if crc is not None else None
    try:
        ckpt = TFCheckpoint(prefix)
        for name in ckpt.names():
            ckpt.read(name)
    finally:
        C._FAST = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(hardware.describe("cpu"))
    print(f"CRC wheel: {C.BACKEND}")
    with tempfile.TemporaryDirectory() as tmp:
        prefix = bundle(Path(tmp), args.mb)
        data = Path(f"{prefix}.data-00000-of-00001").read_bytes()
        mb = len(data) / 2**20
        wheel = C._FAST[1] if C._FAST else None
        rows = []
        if wheel is not None:
            rows.append(
                (
                    "wheel",
                    mb / best(lambda: wheel(data, 0), args.rounds),
                    best(lambda: read_all(prefix, wheel), args.rounds),
                )
            )
        rows.append(
            (
                "numpy lanes",
                mb / best(lambda: C.crc32c_lanes(data), args.rounds),
                best(lambda: read_all(prefix, None), args.rounds),
            )
        )
        part = data[: 8 * 2**20]
        rows.append(("pure Python", 8 / best(lambda: C.crc32c_reference(part), 1), float("nan")))
        print(f"bundle: {mb:.1f} MiB of float32 in {len(TFCheckpoint(prefix).names())} tensors")
        print(f"{'CRC-32C':<12} {'MB/s':>9} {'x pure':>7} {'read all tensors, s':>20}")
        pure = rows[-1][1]
        for name, speed, read in rows:
            print(f"{name:<12} {speed:>9.1f} {speed / pure:>7.1f} {read:>20.2f}")


if __name__ == "__main__":
    main()
