"""Library messages go through the standard `logging` module, under the logger named "bertkit".

Library code never prints: it calls `get_logger(__name__).info(...)` (progress lines such as
"resumed from ...") or `.warning(...)` (something the user should act on). What the host process
sees is its own choice: by default Python shows warnings only; `bertkit.set_verbosity("info")`
(or the CLI, which does it unless given --quiet) adds one handler that prints bertkit's messages
as plain lines on stderr. Nothing here touches the root logger or other libraries' loggers.
"""

from __future__ import annotations

import logging
import sys

from bertkit.errors import BertkitError

ROOT = "bertkit"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "quiet": logging.ERROR,
}
_HANDLER_NAME = "bertkit-console"

logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(name: str = ROOT) -> logging.Logger:
    """The logger for a bertkit module (pass __name__); all of them sit under "bertkit"."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def set_verbosity(level: str | int = "info", stream=None) -> None:
    """Show bertkit's messages at `level` ("debug", "info", "warning", "error") and above.

    Adds (once) a handler writing plain lines to `stream` (default: stderr, looked up at each
    message so that redirections and test captures are honoured).
    """
    if isinstance(level, str):
        if level.lower() not in _LEVELS:
            raise BertkitError(f"verbosity {level!r} is not one of {', '.join(_LEVELS)}")
        level = _LEVELS[level.lower()]
    logger = logging.getLogger(ROOT)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, _StreamHandler)), None)
    if handler is None:
        handler = _StreamHandler(stream)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # printed once, here, not again by a root handler
    else:  # each call says where messages go: a stream given earlier (a test's buffer) is not kept
        handler.stream_override = stream


class _StreamHandler(logging.StreamHandler):
    """A StreamHandler that finds sys.stderr at emit time unless given a stream."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stderr)
        self.stream_override = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self.stream_override or sys.stderr
        super().emit(record)
