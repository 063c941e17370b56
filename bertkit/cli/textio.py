"""Reading the text a command works on: files or `-` (stdin), line by line, without holding it all.

Lines keep their numbers (1-based) so outputs can say which input line they answer; a byte that
is not UTF-8 is a one-line error naming the file and the line. Files are streamed, so inputs
larger than memory work; progress bars go to stderr and never mix with results on stdout.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

from bertkit.errors import InputFileError

STDIN = "-"
BAR_DELAY_S = 1.0  # a bar appears only on runs longer than this: short runs (and their errors) stay one line
T = TypeVar("T")


def check_readable(path: str) -> None:
    """A missing file or a folder is refused before any model is loaded."""
    if path == STDIN:
        return
    p = Path(path)
    if p.is_dir():
        raise InputFileError(p, "is a folder; give a UTF-8 text file (one text per line), or - for stdin")
    if not p.is_file():
        raise InputFileError(p, "no such file")


def iter_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for each line of `path` (`-`: stdin)."""
    check_readable(path)
    with _open(path) as f:
        for number, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                name = "<stdin>" if path == STDIN else path
                raise InputFileError(
                    name, f"not UTF-8 ({err.reason} at byte {err.start}); re-save as UTF-8", number
                ) from None
            yield number, text.rstrip("\r\n")


@contextlib.contextmanager
def _open(path: str) -> Iterator[IO[bytes]]:
    if path == STDIN:
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as f:
            yield f


def count_lines(path: str) -> int | None:
    """Lines in a file (read in blocks, not held), for a progress bar's total; None for stdin."""
    if path == STDIN:
        return None
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, enabled: bool, unit: str = " lines") -> Iterator[Any]:
    """A tqdm bar on stderr (disabled: one that draws nothing); an error clears it from the screen."""
    from tqdm.auto import tqdm  # lazy: keeps bertkit --help fast

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        delay=BAR_DELAY_S,
    )
    try:
        yield bar
    except BaseException:
        bar.leave = False  # the error line, not a half-full bar, is what the user should see last
        raise
    finally:
        bar.close()


def show_progress(args: Any) -> bool:
    """Bars unless --no-progress or --quiet."""
    return bool(getattr(args, "progress", True)) and not getattr(args, "quiet", False)
