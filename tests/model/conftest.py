"""Fixtures of the model tests: the C kernels (bertkit/model/native.py), where this machine builds them."""

from __future__ import annotations

import os
import shutil

import pytest

from bertkit.model import native


@pytest.fixture(scope="session")
def has_cc() -> bool:
    """Whether the compiler native.load looks for is on this machine."""
    return shutil.which(os.environ.get("CC") or "cc") is not None


@pytest.fixture(scope="session")
def kernels(has_cc: bool) -> native.Kernels:
    """The built kernels; a skip without a compiler, a failure with one that did not build them."""
    found = native.kernels()
    if found is None:
        assert not has_cc, "a C compiler is on this machine, yet the C kernels did not build (see the log)"
        pytest.skip("no C compiler here: the PyTorch references run (int8: test_quantize.py, dropout masks)")
    return found
