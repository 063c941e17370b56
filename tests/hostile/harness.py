"""The hostile-input catalogue's machinery: a row says what is injected and what must happen.

Each surface has a module `rows_<surface>.py` holding a list `ROWS` of `Case`s; `test_catalogue.py`
runs every row as one parametrised test. Unless a row says otherwise the expected outcome is the
one of issue 13: a `BertkitError` whose message is one line (naming the file, and the line where
there is one: `match`), nothing written or changed in the row's folder, under `cpu_seconds` of CPU;
through the CLI (`argv`), exit status 2 and exactly one line on stderr.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bertkit.errors import BertkitError


@dataclass
class Case:
    id: str  # short slug, unique over the catalogue
    surface: str  # what is attacked: "tokenizer.json", "TF index", "pretrain --resume", ...
    fault: str  # the input or fault, in words
    # setup(tmp) -> context: builds the hostile files inside tmp (not counted as "writes")
    setup: Callable[[Path], Any] | None = None
    # run(tmp, context) -> value: the library call that must refuse (or accept, with outcome="ok")
    run: Callable[[Path, Any], Any] | None = None
    # argv(tmp, context) -> CLI arguments: the same through `bertkit ...` (exit 2, one stderr line)
    argv: Callable[[Path, Any], Sequence[Any]] | None = None
    match: str = ""  # regex the error message must contain (search)
    outcome: str = "error"  # "error": BertkitError; "ok": accepted on purpose (then `check` says why)
    check: Callable[[Path, Any, Any], None] | None = None  # extra assertions on (tmp, context, result)
    cpu_seconds: float = 1.0
    unchanged: bool = True  # nothing in tmp may be written, changed or deleted by run/argv
    expected: str = field(default="")  # the expected outcome in words (defaults from the fields)

    def describe(self) -> str:
        if self.expected:
            return self.expected
        if self.outcome == "ok":
            return "accepted"
        return "one-line BertkitError" + (f" /{self.match}/" if self.match else "")


def snapshot(folder: Path) -> dict[str, str]:
    """path -> digest of every file under folder (what 'nothing written' compares)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = case.setup(tmp) if case.setup else None
    before = snapshot(tmp)
    if case.run is not None:
        start = time.process_time()
        if case.outcome == "error":
            with pytest.raises(BertkitError) as info:
                case.run(tmp, context)
            message = str(info.value)
            assert "\n" not in message.strip(), f"the message has several lines: {message!r}"
            assert re.search(case.match, message), f"{message!r} does not match /{case.match}/"
            result: Any = info.value
        else:
            result = case.run(tmp, context)
        spent = time.process_time() - start
        assert spent <= case.cpu_seconds, f"{spent:.2f} s of CPU (limit {case.cpu_seconds} s)"
        if case.check:
            case.check(tmp, context, result)
        if case.unchanged:
            assert snapshot(tmp) == before, "files were written or changed"
    if case.argv is not None:
        from bertkit.cli import main

        capsys.readouterr()
        status = main([str(a) for a in case.argv(tmp, context)])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("bertkit: note:")]
        if case.outcome == "error":
            assert status == 2, f"exit status {status}, stderr: {err!r}"
            assert len(lines) == 1, f"stderr is not one line: {err!r}"
            assert re.search(case.match, lines[0]), f"{lines[0]!r} does not match /{case.match}/"
        if case.unchanged:
            assert snapshot(tmp) == before, "files were written or changed"
