"""Writing files so that a crash, a kill or a full disk never leaves a half-written one behind.

Every file bertkit writes for a user (weights, configs, vocabularies, logs, vectors, plots) goes
through `atomic_write`: the bytes land in a temporary file in the same folder, are flushed to disk
(fsync), and only then replace the target with one rename, which POSIX makes atomic; the folder
is fsynced too, so the rename itself survives a power cut. A reader sees the old file or the new
one, never a mix. The temporary file gets the permissions an ordinary `open()` would give (0666
minus the process umask), not mkstemp's private 0600.

`require_new_folder` is the one rule for output folders: bertkit never writes into a non-empty
folder unless told to (`--overwrite`), so an earlier run or a user's own files are never mixed
with or replaced by new output.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from bertkit.errors import BertkitError


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`; on success it is fsynced and renamed over `path`.

    For writers that want a file name rather than a file object (safetensors' save_file, numpy,
    matplotlib). On any error the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call write(f) on a temporary binary file, then move it over `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


def require_new_folder(out: str | os.PathLike, flag: str = "--out", overwrite: bool = False) -> Path:
    """`out` must not exist, or be an empty folder; with overwrite=True a non-empty one is accepted.

    Nothing is created or deleted here: the caller creates the folder at its first write, after
    every other check has passed.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BertkitError(f"{flag} {out}: is a file; give a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise BertkitError(
            f"{flag} {out}: the folder exists and is not empty; choose a new folder, "
            "or pass --overwrite (overwrite=True) to write into it"
        )
    return out
