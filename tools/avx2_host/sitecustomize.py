"""Run the test suite on an AVX-512 host as an AVX2-only host would see it.

CI runs on whichever CPU it is given, AVX2-only or AVX-512 BF16; a session gets one kind. This
lets the other kind's code paths run here:

    PYTHONPATH=tools/avx2_host ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 make test

The two variables cap PyTorch's own kernels and oneDNN's at AVX2 (so float32 sums are those of an
AVX2 machine); this file makes the probes bertkit reads answer as an AVX2 CPU does: torch's
`torch.cpu._is_*_supported()` and the /proc/cpuinfo flags behind `bertkit.hardware.cpu_flags`
(no avx512*, amx*, avx_vnni). The patch is applied when `bertkit.hardware` is first imported, so
a process that never imports it (`bertkit --help`) still imports no torch. ONNX Runtime keeps
its own kernel choice. Python imports `sitecustomize` from the path at start-up, in every
process the tests start.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_PROBES = (
    "_is_avx512_supported",
    "_is_avx512_bf16_supported",
    "_is_avx512_vnni_supported",
    "_is_amx_tile_supported",
    "_is_amx_fp16_supported",
    "_is_vnni_supported",
)


def _as_avx2(hardware) -> None:
    import torch.cpu

    for name in _PROBES:
        if hasattr(torch.cpu, name):
            setattr(torch.cpu, name, lambda: False)
    real = hardware.cpu_flags()
    flags = frozenset(f for f in real if not f.startswith(("avx512", "amx")) and f != "avx_vnni")
    hardware.cpu_flags = lambda: flags  # read at call time, never cached at import


class _PatchedLoader(importlib.abc.Loader):
    """bertkit.hardware's own loader, then the patch."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        _as_avx2(module)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds bertkit.hardware through the normal finders and hands it to _PatchedLoader."""

    def find_spec(self, name, path, target=None):
        if name != "bertkit.hardware":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchedLoader(spec.loader)
        return spec


sys.meta_path.insert(0, _PatchOnImport())
