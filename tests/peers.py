"""The peer packages we measure ourselves against (transformers, tokenizers).

Outside CI a missing peer skips the test; under CI (`CI=true`) it fails, never a silent skip.
A plain module, not a conftest: several conftest.py files would shadow each other on import.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def peer(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"peer package {module} is missing; CI requires it")
        pytest.skip(f"peer package {module} is missing (pip install -e '.[test]')")
