"""bertkit.hub: which names may be fetched, offline rules, and uploads through a stubbed API."""

from __future__ import annotations

import sys
import types

import pytest

from bertkit.errors import BertkitError, InputFileError
from bertkit.hub import could_be_local, push_folder, resolve_folder


@pytest.mark.parametrize("name", ["./runs/sst2", "../x", "/abs/path", "~/model", "runs/sst2/", "a b", "x/y/z"])
def test_path_like_names_are_never_fetched(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # an existing parent: "runs/sst2" is a mistyped local path
    assert could_be_local(name)
    fetched = []
    fake = types.SimpleNamespace(snapshot_download=lambda *a, **k: fetched.append(a))
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    with pytest.raises(InputFileError, match="no such"):
        resolve_folder(name)
    assert not fetched


def test_a_hub_name_is_fetched_with_the_options_and_a_notice(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    (tmp_path / "snap").mkdir()
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path / "snap")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    with caplog.at_level("WARNING", logger="bertkit"):
        assert resolve_folder("someone/bert", revision="v2", token="t", local_files_only=False) == tmp_path / "snap"
    assert calls[0][0] == "someone/bert"
    assert calls[0][1]["revision"] == "v2" and calls[0][1]["token"] == "t" and not calls[0][1]["local_files_only"]
    assert "fetching it from the Hugging Face hub" in caplog.text


def test_offline_uses_the_cache_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BERTKIT_OFFLINE", "1")
    seen = {}

    def snapshot_download(repo_id, **kwargs):
        seen.update(kwargs)
        raise OSError("not in the cache")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    with pytest.raises(BertkitError, match=r"offline: it is not in the local cache"):
        resolve_folder("someone/bert")
    assert seen["local_files_only"] is True


def test_push_folder_uploads_through_the_api(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    (tmp_path / "config.json").write_text("{}")
    log = []

    class HfApi:
        def __init__(self, token=None):
            log.append(("token", token))

        def create_repo(self, repo_id, private=None, exist_ok=False):
            log.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=None):
            log.append(("upload", repo_id, folder_path, commit_message))
            return types.SimpleNamespace(commit_url=f"https://hub/{repo_id}/commit/1")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=HfApi))
    url = push_folder(tmp_path, "me/tiny", token="secret", private=True)
    assert url == "https://hub/me/tiny/commit/1"
    assert ("create", "me/tiny", True, True) in log and (
        "upload",
        "me/tiny",
        str(tmp_path),
        "Upload with bertkit",
    ) in log
