"""bertkit.files: atomic writes (old or new, never half), permissions, the new-folder rule."""

from __future__ import annotations

import os
import stat

import pytest

from bertkit import files
from bertkit.errors import BertkitError


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    files.atomic_write_json(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "vocab.txt"
    target.write_text("old")

    def write(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files.atomic_write(target, write)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = files.atomic_write_text(tmp_path / "config.json", "{}")
        with files.atomic_path(tmp_path / "model.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "model.bin").stat().st_mode) == 0o644


def test_new_folder_rule(tmp_path):
    assert files.require_new_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    files.require_new_folder(tmp_path / "empty")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "mine.txt").write_text("x")
    with pytest.raises(BertkitError, match="not empty.*--overwrite"):
        files.require_new_folder(tmp_path / "used")
    files.require_new_folder(tmp_path / "used", overwrite=True)
    with pytest.raises(BertkitError, match="is a file"):
        files.require_new_folder(tmp_path / "used" / "mine.txt")
    assert (tmp_path / "used" / "mine.txt").read_text() == "x"
