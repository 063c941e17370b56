"""Folder (or hub name) -> model with a given head + its tokenizer + its fine-tuning settings.

The one loader behind `embed`, `pipeline`, `evaluate`, the viz commands and every `--model`
argument: it resolves the name once (bertkit.hub), reads the model with the asked-for head, the
tokenizer from the same folder unless another is given, and `finetune.json` when the folder was
made by `bertkit finetune`. `require_head=True` refuses a checkpoint that lacks trained weights for
the head (its fresh random weights would answer noise).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bertkit.model as models
from bertkit.constants import FINETUNE_SETTINGS_FILE
from bertkit.errors import BertkitError, InputFileError
from bertkit.hub import resolve_folder
from bertkit.tokenizers import Tokenizer

HUB_OPTIONS = ("revision", "token", "cache_dir", "local_files_only")


def load_settings(folder: str | os.PathLike) -> dict[str, Any]:
    """The fine-tuning settings saved with a model ({} for a plain pretrained folder)."""
    path = Path(folder) / FINETUNE_SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg})", err.lineno) from None
    except UnicodeDecodeError:
        raise InputFileError(path, "not UTF-8 text; it is written by bertkit finetune: re-run it") from None
    if not isinstance(value, dict):
        raise InputFileError(path, f"must hold a JSON object, not a {type(value).__name__}")
    return value


def newly_initialized(model: Any) -> list[str]:
    """The weights `model`'s checkpoint lacked (initialised at random when it was loaded)."""
    return list(getattr(getattr(model, "loading_info", None), "newly_initialized", []) or [])


def check_trained_head(model: Any, folder: str | os.PathLike) -> None:
    """Refuse a folder whose checkpoint lacks this head: its fresh random weights would answer noise."""
    new = newly_initialized(model)
    if new:
        shown = ", ".join(new[:4]) + (", ..." if len(new) > 4 else "")
        raise InputFileError(
            folder,
            f"this checkpoint has no trained weights for {type(model).__name__} ({shown}); give a folder "
            "made by bertkit finetune for this task (or a checkpoint that has this head)",
        )


def load_folder(
    model: Any,
    head: str = "BertModel",
    tokenizer: Any = None,
    *,
    require_head: bool = False,
    model_options: dict[str, Any] | None = None,
    **hub: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, settings) from a folder or hub name; loaded objects pass through.

    model_options: passed to the head's from_pretrained (e.g. num_labels, id2label for a new head).
    hub: revision, token, cache_dir, local_files_only (see bertkit.hub.resolve_folder).
    """
    unknown = set(hub) - set(HUB_OPTIONS)
    if unknown:
        raise BertkitError(f"unknown loading option(s) {sorted(unknown)}; use {', '.join(HUB_OPTIONS)}")
    settings: dict[str, Any] = {}
    if model is None:
        raise BertkitError("give model= a model folder (config.json + model.safetensors), a hub name or a model")
    if isinstance(model, (str, os.PathLike)):
        folder = resolve_folder(model, **hub)
        settings = load_settings(folder)
        model = getattr(models, head).from_pretrained(folder, **(model_options or {}))
        if require_head:
            check_trained_head(model, folder)
        if tokenizer is None:
            tokenizer = folder
    elif tokenizer is None:
        tokenizer = getattr(model, "name_or_path", None)
        if tokenizer is None:
            raise BertkitError("a model object without a folder needs tokenizer= (a Tokenizer or its folder)")
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = Tokenizer.from_pretrained(resolve_folder(tokenizer, what="tokenizer folder", **hub))
    return model, tokenizer, settings
