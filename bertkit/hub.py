"""One rule for every `model=` / `--model` / `--tokenizer` argument: a local folder, or a hub name.

`resolve_folder(name_or_path)` returns a local folder. A path that exists is used as it is. A name
that cannot be a local path -- no leading `./`, `../`, `/` or `~`, no parent folder that exists,
the `owner/name` or `name` shape of the Hugging Face hub -- is fetched from the hub through
huggingface_hub (the `hub` extra), with a one-line notice, and served from its cache afterwards.
Everything else is "no such folder": a mistyped `runs/sst2` is never sent to the network.
`local_files_only=True`, `HF_HUB_OFFLINE=1` or `BERTKIT_OFFLINE=1` never fetch (the cache is
still used).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError
from bertkit.log import get_logger

logger = get_logger(__name__)

HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
# what a BERT folder needs from a hub repository (no TF/Flax/ONNX weights)
ALLOW_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model", "1_Pooling/*", "2_Normalize/*"]
TORCH_BIN_PATTERNS = ["*.json", "*.txt", "pytorch_model.bin", "pytorch_model-*.bin", "1_Pooling/*"]


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "BERTKIT_OFFLINE"))


def could_be_local(name: str) -> bool:
    """Whether `name` reads as a local path (so a missing one is a typo, never a download)."""
    if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or "\\" in name or os.path.isabs(name):
        return True
    if not HUB_NAME.fullmatch(name):
        return True
    parent = Path(name).parent
    return str(parent) not in ("", ".") and parent.exists()


def resolve_folder(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    what: str = "model folder",
) -> Path:
    """A local folder for `name_or_path` (see the module docstring)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputFileError(path, f"is a file; give the {what} (the folder holding config.json)")
        return path
    name = os.fspath(name_or_path)
    if could_be_local(name):
        raise InputFileError(path, f"no such {what}")
    try:
        from huggingface_hub import snapshot_download  # lazy: optional extra [hub]
    except ImportError:
        raise InputFileError(
            path,
            f"no such {what}; {name!r} looks like a Hugging Face hub name: to download it, pip install 'bertkit[hub]'",
        ) from None
    only_local = bool(local_files_only) or offline()
    kwargs: dict[str, Any] = dict(revision=revision, token=token, cache_dir=cache_dir, local_files_only=only_local)
    if not only_local:
        logger.warning(f"{name!r} is not a local folder: fetching it from the Hugging Face hub")
    try:
        local = Path(snapshot_download(name, allow_patterns=ALLOW_PATTERNS, **kwargs))
        if _lacks_weights(local):
            local = Path(snapshot_download(name, allow_patterns=TORCH_BIN_PATTERNS, **kwargs))
    except Exception as err:  # offline, unknown repo, gated model, revision not found ...
        first = str(err).splitlines()[0] if str(err) else ""
        hint = " (offline: it is not in the local cache)" if only_local else ""
        raise BertkitError(
            f"{name}: no such {what}, and fetching it from the Hugging Face hub failed{hint} "
            f"({type(err).__name__}: {first})"
        ) from None
    return local


def _lacks_weights(folder: Path) -> bool:
    """A model repository (config.json) whose safetensors file was not published."""
    return (folder / "config.json").exists() and not any(folder.glob("*.safetensors"))


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload every file of `folder` to the hub repository `repo_id` (created if needed); its URL.

    The one upload path behind `model.push_to_hub` and `tokenizer.push_to_hub`.
    """
    try:
        from huggingface_hub import HfApi  # lazy: optional extra [hub]
    except ImportError:
        raise BertkitError("push_to_hub needs huggingface_hub: pip install 'bertkit[hub]'") from None
    if offline():
        raise BertkitError("push_to_hub: offline (HF_HUB_OFFLINE / BERTKIT_OFFLINE is set); unset it to upload")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=os.fspath(folder),
            revision=revision,
            commit_message=commit_message or "Upload with bertkit",
        )
    except Exception as err:  # auth, network, permissions: one line with the hub's reason
        first = str(err).splitlines()[0] if str(err) else ""
        raise BertkitError(f"push_to_hub {repo_id}: the upload failed ({type(err).__name__}: {first})") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}")
