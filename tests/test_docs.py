"""docs/concepts.md stays true: every file, name and command it points to exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from bertkit.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
CONCEPTS = ROOT / "docs" / "concepts.md"


def _rows() -> list[str]:
    return [line for line in CONCEPTS.read_text(encoding="utf-8").splitlines() if line.startswith("|")]


def test_every_path_exists():
    paths = set(re.findall(r"`((?:bertkit|tests|docs)/[\w/.]+)`", CONCEPTS.read_text(encoding="utf-8")))
    assert len(paths) > 25
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/concepts.md names files that do not exist: {missing}"


def test_every_named_function_or_class_is_in_its_file():
    checked = 0
    for row in _rows():
        # `bertkit/x/y.py` (`Name`, `other`) -> each name defined in that module
        for path, names in re.findall(r"`(bertkit/[\w/]+\.py)` \(([^)]*)\)", row):
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            for name in re.findall(r"`(\w+)[`(]", names):
                assert hasattr(module, name), f"{path} has no {name} (docs/concepts.md)"
                checked += 1
    assert checked > 20


def test_commands_named_in_the_doc_exist():
    named = set(re.findall(r"`bertkit ([a-z-]+)", CONCEPTS.read_text(encoding="utf-8")))
    assert {"attention", "similarity", "demo", "tokenizer", "pretrain", "finetune"} <= named
    choices = build_parser()._subparsers._group_actions[0].choices
    missing = sorted(named - set(choices))
    assert not missing, f"docs/concepts.md names commands that do not exist: {missing}"
