"""Every row of the hostile-input catalogue (tests/hostile/rows_*.py) as one parametrised test."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from harness import Case, run_case

HERE = Path(__file__).parent


def _rows() -> list[Case]:
    rows: list[Case] = []
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if info.name.startswith("rows_"):
            rows += importlib.import_module(info.name).ROWS
    ids = [r.id for r in rows]
    duplicated = {i for i in ids if ids.count(i) > 1}
    assert not duplicated, f"catalogue ids used twice: {duplicated}"
    return rows


ROWS = _rows()


def test_the_catalogue_has_at_least_40_rows():
    assert len(ROWS) >= 40, f"{len(ROWS)} rows"


@pytest.mark.parametrize("case", ROWS, ids=[f"{r.surface}: {r.id}" for r in ROWS])
def test_hostile(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_case(case, tmp_path, capsys)
