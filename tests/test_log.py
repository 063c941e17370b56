"""bertkit.log: library messages go through logging; the host process decides what it sees."""

from __future__ import annotations

import io
import logging

import pytest

import bertkit
from bertkit.errors import BertkitError
from bertkit.log import get_logger, set_verbosity


@pytest.fixture(autouse=True)
def _restore():
    root = logging.getLogger("bertkit")
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    yield
    root.handlers[:], root.level, root.propagate = handlers, level, propagate


def test_modules_log_under_bertkit():
    assert get_logger("bertkit.train.loop").name == "bertkit.train.loop"
    assert get_logger("x").name == "bertkit.x"


def test_set_verbosity_prints_plain_lines_once(capsys):
    stream = io.StringIO()
    bertkit.set_verbosity("info", stream=stream)
    bertkit.set_verbosity("info", stream=stream)  # no second handler
    get_logger("bertkit.test").info("resumed from step 3")
    get_logger("bertkit.test").debug("hidden")
    assert stream.getvalue() == "resumed from step 3\n"
    set_verbosity("warning", stream=stream)
    get_logger("bertkit.test").info("quiet now")
    assert "quiet now" not in stream.getvalue()


def test_unknown_levels_are_refused():
    with pytest.raises(BertkitError, match="verbosity"):
        set_verbosity("loud")


def test_a_later_call_without_a_stream_writes_to_stderr_again(capsys):
    """A stream given once (a notebook cell's buffer, a test's StringIO) is not where later messages
    of a default set_verbosity() go: the CLI calls it without one and must reach stderr."""
    earlier = io.StringIO()
    set_verbosity("info", stream=earlier)
    set_verbosity("info")
    get_logger("bertkit.test").warning("step 5: non-finite loss")
    assert "step 5: non-finite loss" in capsys.readouterr().err
    assert earlier.getvalue() == ""
