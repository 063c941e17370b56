"""The `bertkit` command: argv -> library calls. One small module per command group.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its sub-commands and
sets `func` on each parser; `func(args)` returns an exit status. Command modules import heavy
libraries (torch) inside their functions, so `bertkit --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bertkit.errors import BertkitError

COMMAND_MODULES = [
    "bertkit.cli.tokenizer",
    "bertkit.cli.finetune",
    "bertkit.cli.demo",
    "bertkit.cli.viz",
    "bertkit.cli.convert",
    "bertkit.cli.embed",
    "bertkit.cli.pretrain",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertkit", description="BERT end to end on PyTorch.")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except BertkitError as err:
        print(f"bertkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bertkit {args.command}: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from bertkit import __version__

    return f"bertkit {__version__}"
