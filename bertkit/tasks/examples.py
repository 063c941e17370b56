"""What the task readers produce (one example per sentence, pair or question), and the checked
way every reader gets text out of a file: it must exist, be a file, and be UTF-8 (else
`file:line: not UTF-8`, naming the first bad line)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.errors import InputFileError

# A task data source: a file path, a folder saved by datasets.Dataset.save_to_disk, or a
# datasets.Dataset object (typed Any: `datasets` is an optional package).
DataSource = Any  # str | os.PathLike | datasets.Dataset


@dataclass
class TextExample:
    """One sentence (or sentence pair) to classify; `line` points back into the source file."""

    text: str
    text_pair: str | None = None
    label: str | None = None
    line: int | None = None


@dataclass
class QAExample:
    """A SQuAD question over its context; `answers` are (text, character start) references."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)
    title: str = ""
    line: int | None = None


@dataclass
class TokenExample:
    """A sentence as words with one IOB tag per word (None at prediction time)."""

    words: list[str]
    tags: list[str] | None = None
    line: int | None = None


def check_file(path: Path) -> None:
    if path.is_dir():
        raise InputFileError(path, "is a folder; give a data file (or a folder saved by datasets' save_to_disk)")
    if not path.is_file():
        raise InputFileError(path, "file not found (check the path)")


def read_text(path: str | os.PathLike) -> str:
    """The whole file as text; a byte that is not UTF-8 -> `path:line: not UTF-8 ...`."""
    path = Path(path)
    check_file(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise InputFileError(
            path, f"not UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8 (e.g. iconv -t utf-8)", line
        ) from None


def text_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(1-based line number, line without its newline) for every line of a checked UTF-8 file."""
    return list(enumerate(read_text(path).split("\n"), 1))
