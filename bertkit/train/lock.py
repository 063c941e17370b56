"""One run per output folder: a lock file that a second run refuses and a dead run's leftover yields.

`RunLock(out)` creates `out/.bertkit-run.lock` holding the owner's pid and host. A second run that
finds it checks the pid: a process that is still alive on this host keeps the folder (one-line
error); a lock left by a process that died (SIGKILL, power cut) is taken over. Where the system
offers advisory locks (fcntl on POSIX), the lock file is also held with flock, which the kernel
releases when its holder dies, so the check works across hosts sharing a filesystem too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import IO

from bertkit.errors import BertkitError
from bertkit.log import get_logger

logger = get_logger(__name__)

LOCK_FILE = ".bertkit-run.lock"

_HELD: dict[Path, int] = {}  # lock files this process holds, with their nesting depth

try:
    import fcntl
except ImportError:  # Windows: the pid check alone
    fcntl = None  # type: ignore[assignment]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class RunLock:
    """Context manager: hold `folder`'s run lock for the duration of a run."""

    def __init__(self, folder: str | os.PathLike, flag: str = "--out"):
        self.path = Path(folder) / LOCK_FILE
        self.flag = flag
        self._fh: IO[str] | None = None
        self._key: Path | None = None

    def acquire(self) -> RunLock:
        key = self.path.resolve() if self.path.parent.exists() else self.path.absolute()
        if _HELD.get(key):  # this process holds it already (pretrain() around train()): nest
            _HELD[key] += 1
            self._key = key
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            owner = self._owner(fh)
            held = fcntl is not None and not _try_flock(fh)
            if held or (owner and owner.get("pid") != os.getpid() and self._owner_alive(owner)):
                raise BertkitError(
                    f"{self.flag} {self.path.parent}: another run is using this folder "
                    f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')}); wait for it to end or choose "
                    f"another {self.flag} (if no such run exists, delete {self.path})"
                )
            if owner and owner.get("pid") != os.getpid():
                logger.warning(f"{self.path}: taking over the lock of pid {owner.get('pid')}, which has ended")
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
            fh.flush()
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        self._key = self.path.resolve()
        _HELD[self._key] = 1
        return self

    @staticmethod
    def _owner(fh: IO[str]) -> dict:
        fh.seek(0)
        try:
            owner = json.loads(fh.read() or "{}")
        except ValueError:
            return {}
        return owner if isinstance(owner, dict) else {}

    @staticmethod
    def _owner_alive(owner: dict) -> bool:
        if owner.get("host") not in (None, socket.gethostname()):
            return fcntl is None  # another host: only its flock (already free here) could tell
        return _alive(int(owner.get("pid") or 0))

    def release(self) -> None:
        if self._key is None:
            return
        _HELD[self._key] -= 1
        if _HELD[self._key] > 0 or self._fh is None:
            self._key = None
            return
        del _HELD[self._key]
        self._key = None
        with contextlib.suppress(OSError):
            self.path.unlink()
        self._fh.close()  # closing drops the flock
        self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _try_flock(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
