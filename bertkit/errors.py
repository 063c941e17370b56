"""The one exception type users see: a clear message naming the problem and the fix.

Library code raises `BertkitError` (or a subclass) for bad input instead of letting a traceback
escape from deep inside; the CLI prints its message on one line and exits with status 2.
"""

from __future__ import annotations


class BertkitError(Exception):
    """Bad input or a broken file: the message says what is wrong and how to fix it."""


class InputFileError(BertkitError, ValueError):
    """A file (vocab, config, checkpoint, data) is missing or malformed."""

    def __init__(self, path: object, problem: str, line: int | None = None):
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem
