"""Where bertkit finds shared data (env `BERTKIT_DATA`, default `../shared/data`) and keeps what it
builds for this machine (`cache_dir()`), and `setting()`, the field every settings dataclass
(pretraining, data building, fine-tuning) is made of.

The data default is relative to the project checkout (the folder holding `bertkit/`), so it works
from any working directory.
"""

from __future__ import annotations

import os
from dataclasses import field
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def setting(default: Any, help: str, **metadata: Any) -> Any:
    """A settings-dataclass field: its default, its `--help` line and what the CLI reads beside
    them (origin of a recipe number, choices, metavar, recipe=True for per-task defaults)."""
    return field(default=default, metadata={"help": help, **metadata})


def data_dir() -> Path:
    """The data root: `$BERTKIT_DATA` when set, else `../shared/data` beside the checkout."""
    env = os.environ.get("BERTKIT_DATA")
    if env:
        return Path(env).expanduser()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()


def data_path(*parts: str, must_exist: bool = True) -> Path:
    """A path under the data root; raises a clear error when it is missing."""
    path = data_dir().joinpath(*parts)
    if must_exist and not path.exists():
        raise BertkitError(
            f"data not found: {path} (set BERTKIT_DATA to the folder holding "
            f"corpus/, sst2/, nli/, squad/ and conll2003/)"
        )
    return path


def cache_dir() -> Path:
    """What bertkit builds for this machine (compiled kernels): `$BERTKIT_CACHE` when set, else
    `$XDG_CACHE_HOME/bertkit`, else `~/.cache/bertkit`. Not created here."""
    env = os.environ.get("BERTKIT_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bertkit"
