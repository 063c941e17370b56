"""bertkit's one piece of C (`kernels.c`): for CPU inference, the passes around the int8 matmul of
`Int8Linear` (model/quantize.py) and self-attention over packed sequences (fast_paths.c_attention);
for training, the dropout masks (fast_paths.dropout_mask).

Why: Int8Linear maps each token onto its own 8-bit grid before `torch._int_mm` and back after it.
In PyTorch that is a dozen passes over the activations, costing as much as the int8 matmul itself
(docs/model.md); the C code does each side in one pass per row, with the feed-forward's GELU or the
residual add folded into the way back. Same int8 codes as the PyTorch reference, which stays as the
fallback and the test oracle (tests/model/test_native.py). Attention on short sentences spends more
time padding, masking and copying than computing; the C attention reads the packed projection and
writes the packed context, several times faster than PyTorch's path on short inputs (bench/attention.py,
docs/model.md). A dropout mask is one vectorised pass over a hash of (seed, position) instead of
torch's one-thread generator and two more passes; fast_paths.hashed_bits is its reference.

How: compiled on first use with the machine's C compiler (`$CC`, else `cc`), for this CPU
(-march=native), into `bertkit.settings.cache_dir() / "kernels"`, under a name hashing the
source, the compiler, the flags and the CPU's flags; written to a temporary file and renamed, so
processes starting together do not read half a library. Loaded with ctypes: no Python or torch
headers, a build of well under a second, and each call releases the GIL. Without a compiler (or
with BERTKIT_NATIVE=0) `kernels()` is None, one log line says why, and PyTorch runs both.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import torch

from bertkit.hardware import cpu_flags
from bertkit.log import get_logger
from bertkit.settings import cache_dir

logger = get_logger(__name__)

SOURCE = Path(__file__).with_name("kernels.c")
# (compiler flags, link flags): with glibc's vector tanh (libmvec) first, then plain libm (other C libraries)
BUILDS = (
    (
        ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"],
        ["-lmvec", "-lm"],
    ),
    (["-O3", "-fopenmp-simd", "-DBK_SCALAR_MATH"], ["-lm"]),
)
# what a machine without the kernels does instead (log lines)
FALLBACK = "int8 projections, CPU attention and dropout masks run in PyTorch"
# the activations the way back can apply (model/config.ACTIVATIONS kinds) -> the C code's number
ACTIVATIONS = {None: 0, "gelu": 1, "gelu_tanh": 2, "relu": 3}

_P, _N = ctypes.c_void_p, ctypes.c_int64


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class Kernels:
    """The loaded library. Arguments: float32 (int8 / int32 where named) CPU tensors, contiguous."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.bk_quantize_rows.argtypes = [_P, _N, _N, _P, _P, _P, _P, _P]
        lib.bk_quantize_rows.restype = None
        lib.bk_dequantize_rows.argtypes = [_P, _N, _N, _P, _P, _P, _P, _P, _P, ctypes.c_int, _P]
        lib.bk_dequantize_rows.restype = None
        lib.bk_attention.argtypes = [_P, _N, _P, _N, _N, ctypes.c_float, _P]
        lib.bk_attention.restype = ctypes.c_int
        lib.bk_attention_lanes.restype = ctypes.c_int
        lib.bk_dropout_mask16.argtypes = [_P, _N, ctypes.c_uint64, ctypes.c_int32, ctypes.c_uint16]
        lib.bk_dropout_mask16.restype = None
        lib.bk_dropout_mask32.argtypes = [_P, _N, ctypes.c_uint64, ctypes.c_int32, ctypes.c_float]
        lib.bk_dropout_mask32.restype = None
        self.attention_lanes = int(lib.bk_attention_lanes())  # floats per vector in this build

    def quantize_rows(
        self, x: torch.Tensor, inv_smooth: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [rows, cols] -> (int8 codes [rows, cols], each row's mid [rows, 1] and half-range [rows, 1])."""
        rows, cols = x.shape
        q = torch.empty(rows, cols, dtype=torch.int8)
        mid, half = torch.empty(rows, 1), torch.empty(rows, 1)
        scratch = torch.empty(cols) if inv_smooth is not None else None
        self.lib.bk_quantize_rows(
            x.data_ptr(), rows, cols, _ptr(inv_smooth), q.data_ptr(), mid.data_ptr(), half.data_ptr(), _ptr(scratch)
        )
        return q, mid, half

    def dequantize_rows(
        self,
        acc: torch.Tensor,
        w_scale: torch.Tensor,
        half: torch.Tensor,
        mid: torch.Tensor,
        row_sums: torch.Tensor,
        bias: torch.Tensor,
        residual: torch.Tensor | None = None,
        act: str | None = None,
    ) -> torch.Tensor:
        """int32 products [rows, cols] -> act(float32 output [+ residual])."""
        rows, cols = acc.shape
        out = torch.empty(rows, cols)
        self.lib.bk_dequantize_rows(
            acc.data_ptr(),
            rows,
            cols,
            w_scale.data_ptr(),
            half.data_ptr(),
            mid.data_ptr(),
            row_sums.data_ptr(),
            bias.data_ptr(),
            _ptr(residual),
            ACTIVATIONS[act],
            out.data_ptr(),
        )
        return out

    def attention(self, qkv: torch.Tensor, starts: torch.Tensor, heads: int) -> torch.Tensor:
        """Packed fused projection [N, 3H] (query | key | value, heads of H / heads columns each, a
        multiple of 16) -> the heads' context merged [N, H]; sequence s is rows starts[s]..starts[s+1]
        (int64, [S + 1])."""
        N, H = qkv.shape[0], qkv.shape[1] // 3
        head_size = H // heads
        out = torch.empty(N, H)
        scale = 1.0 / math.sqrt(head_size)
        starts = starts.to(torch.int64).contiguous()
        failed = self.lib.bk_attention(
            qkv.data_ptr(), starts.numel() - 1, starts.data_ptr(), heads, head_size, scale, out.data_ptr()
        )
        if failed:
            raise MemoryError(f"the C attention could not allocate its scratch for {N} tokens of {heads} heads")
        return out

    def dropout_mask(self, out: torch.Tensor, seed: int, threshold: int, keep: float) -> torch.Tensor:
        """Fills `out` (contiguous float32, bfloat16 or float16) with the inverted-dropout multipliers
        of `seed` (kernels.c, bk_dropout_mask*): `keep` where an element's hashed signed 16 bits are
        >= threshold, else 0; returns it."""
        n, seed = out.numel(), seed & (2**64 - 1)
        if out.dtype == torch.float32:
            self.lib.bk_dropout_mask32(out.data_ptr(), n, seed, threshold, keep)
        else:  # the 16-bit pattern of `keep` in out's dtype
            bits = int(torch.tensor(keep, dtype=out.dtype).view(torch.int16).item()) & 0xFFFF
            self.lib.bk_dropout_mask16(out.data_ptr(), n, seed, threshold, bits)
        return out


_lock = threading.Lock()
_loaded: list[Kernels | None] = []  # empty until the first kernels() call has tried


def kernels() -> Kernels | None:
    """The compiled kernels, built on the first call of the process; None where they cannot be."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(load())
    return _loaded[0]


def load(folder: Path | None = None) -> Kernels | None:
    """Build (or reuse) and load the library from `folder` (default: the user cache); None, with one
    log line saying why, where that is not possible."""
    if os.environ.get("BERTKIT_NATIVE", "1") == "0":
        logger.info(f"BERTKIT_NATIVE=0: {FALLBACK}")
        return None
    cc = os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        logger.warning(
            f"no C compiler ({cc!r}) found, so {FALLBACK} (same values, slower); "
            "install gcc or point CC at a C compiler"
        )
        return None
    failures = []
    for flags, libs in BUILDS:
        try:
            return Kernels(ctypes.CDLL(str(_built(cc, flags, libs, folder))))
        except (OSError, subprocess.SubprocessError) as e:
            failures.append(str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__)
    logger.warning(f"building {SOURCE.name} with {cc} failed ({'; '.join(failures)}); {FALLBACK}")
    return None


def _built(cc: str, flags: list[str], libs: list[str], folder: Path | None) -> Path:
    """The library for these settings, compiled unless the cache already holds it."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = repr((version, flags, libs, sorted(cpu_flags()), platform.machine())).encode()
    name = f"kernels-{hashlib.sha256(SOURCE.read_bytes() + key).hexdigest()[:16]}.so"
    folder = folder or cache_dir() / "kernels"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: build for this process only
        folder = Path(tempfile.mkdtemp(prefix="bertkit-kernels-"))
    path = folder / name
    if path.exists():
        return path
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        run = subprocess.run(
            [cc, *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(tmp), *libs],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if run.returncode != 0:
            raise OSError(run.stderr.strip() or f"{cc} exited with {run.returncode}")
        os.replace(tmp, path)  # atomic: a concurrent first use sees the whole file or none
    finally:
        tmp.unlink(missing_ok=True)
    logger.info(f"compiled {SOURCE.name} -> {path}")
    return path
