"""`bertkit --help` and every `bertkit <command> --help` load neither torch nor numpy.

Each runs in a fresh interpreter (this test process has loaded torch long ago), through the
same `main` the console script calls; whatever the parsers import shows up in sys.modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bertkit.cli import build_parser

HEAVY = ("torch", "numpy")
SCRIPT = f"""
import sys
from bertkit.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("HEAVY:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
sys.exit(code)
"""


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the tree: (), ("tokenizer",), ("tokenizer", "train"), ..."""
    found = [prefix]
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias names the same parser again
                    seen.add(id(sub))
                    found += commands(sub, (*prefix, name))
    return found


COMMANDS = commands(build_parser())


def test_the_command_tree_is_walked():
    assert ("predict",) in COMMANDS and ("tokenizer", "train") in COMMANDS and ("export", "onnx") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "bertkit")
def test_help_imports_neither_torch_nor_numpy(command):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage: bertkit" in done.stdout
    heavy = done.stdout.rsplit("HEAVY:", 1)[1].strip()
    assert heavy == "", f"`bertkit {' '.join(command)} --help` imported {heavy}"
