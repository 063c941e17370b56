"""Where bertkit finds shared data: one setting, env `BERTKIT_DATA`, default `../shared/data`.

The default is relative to the project checkout (the folder holding `bertkit/`), so it works
from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from bertkit.errors import BertkitError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
