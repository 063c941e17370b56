"""The `bertkit` command: argv -> library calls. One small module per command group.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its sub-commands and
sets `func` on each parser; `func(args)` returns an exit status. Command modules import heavy
libraries (torch) inside their functions, so `bertkit --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from bertkit import __version__
from bertkit.errors import BertkitError
from bertkit.log import set_verbosity

COMMAND_MODULES = [
    "bertkit.cli.tokenizer",
    "bertkit.cli.finetune",
    "bertkit.cli.probe",
    "bertkit.cli.predict",
    "bertkit.cli.demo",
    "bertkit.cli.viz",
    "bertkit.cli.convert",
    "bertkit.cli.info",
    "bertkit.cli.embed",
    "bertkit.cli.pretrain",
    "bertkit.cli.serve",
    "bertkit.cli.export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertkit", description="BERT end to end on PyTorch.")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _add_verbosity(parser)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """--quiet / --verbose on every command that runs (the leaves of the command tree); every
    command's --help shows the defaults."""
    parser.formatter_class = _DefaultsHelp
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in groups:
        for sub in set(action.choices.values()):
            _add_verbosity(sub)
    if not groups and parser.prog != "bertkit":
        talk = parser.add_mutually_exclusive_group()
        talk.add_argument(
            "--quiet", "-q", action="store_true", help="print only warnings and errors (no progress bars)"
        )
        talk.add_argument("--verbose", "-v", action="store_true", help="print debugging messages too")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    quiet, verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    set_verbosity("warning" if quiet else "debug" if verbose else "info")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"bertkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except (BertkitError, OSError, UnicodeDecodeError) as err:
        if os.environ.get("BERTKIT_DEBUG"):
            raise
        print(f"bertkit {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


def one_line(err: BaseException) -> str:
    """The message of a BertkitError; for the OS's and codecs' errors, the file and what to do.

    The CLI's last line of defence: whatever escapes the library's own checks still ends as one
    line naming the file (BERTKIT_DEBUG=1 shows the traceback instead).
    """
    if isinstance(err, BertkitError):
        return " ".join(str(err).split("\n"))
    if isinstance(err, UnicodeDecodeError):
        where = getattr(err, "filename", None)
        return f"{where + ': ' if where else ''}not UTF-8 text (byte {err.start}); save the file as UTF-8"
    if isinstance(err, OSError):
        name = err.filename or ""
        reason = err.strerror or type(err).__name__
        if err.errno == 28:
            reason += " (the disk is full: free space and run again; files written before are intact)"
        return f"{name}: {reason}" if name else reason
    return str(err)


def _version() -> str:
    return f"bertkit {__version__}"


class _DefaultsHelp(argparse.HelpFormatter):
    """Help lines end with "(default: X)" wherever a default means something (not None, not a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a help text written for people ("15%") is not a format string: only %(name)s is expanded
        text = re.sub(r"%(?!\(\w+\)[sdrf])", "%%", (action.help or "").replace("%%", "%"))
        default = action.default
        meaningful = default not in (None, argparse.SUPPRESS) and not isinstance(default, bool)
        if meaningful and "%(default)" not in text and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text
