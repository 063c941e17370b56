"""The export tests need onnx, onnxruntime and onnxscript (the `onnx` extra)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def onnx_ready():
    """Skip (fail in CI) without onnx / onnxruntime / onnxscript."""
    from peers import peer

    for module in ("onnx", "onnxruntime", "onnxscript"):
        peer(module)
