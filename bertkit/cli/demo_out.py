"""The demo's output folders: `bertkit demo --out DIR` replaces only folders an earlier demo made.

Each step asks `own_folder(DIR / name)` for its folder: a new one is created and marked; one that
carries the mark (an earlier demo's) is emptied and reused; anything else -- a user's folder that
happens to have the name -- is refused with one line, never deleted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bertkit.errors import BertkitError

DEMO_MARK = ".bertkit-demo"  # in every folder the demo made, so it only ever replaces its own


def made_by_demo(folder: Path) -> bool:
    """Whether an earlier demo made `folder` (it carries the mark), so the demo may reuse or replace it."""
    return (Path(folder) / DEMO_MARK).is_file()


def own_folder(folder: Path) -> Path:
    """An empty folder for a demo step: new, or one an earlier demo made (replaced); anything else is refused."""
    folder = Path(folder)
    if folder.exists() and not made_by_demo(folder) and (not folder.is_dir() or any(folder.iterdir())):
        raise BertkitError(
            f"{folder}: exists and was not made by the demo; move it away or give the demo another --out"
        )
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / DEMO_MARK).write_text("made by `bertkit demo`; the demo may replace this folder\n", encoding="utf-8")
    return folder
