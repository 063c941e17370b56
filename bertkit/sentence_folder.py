"""sentence-transformers folders: how their vectors are made, read from the folder's own files.

A sentence-transformers model is a BERT plus a recipe: modules.json lists the modules in order
(Transformer, Pooling, optionally Normalize), 1_Pooling/config.json names the pooling mode(s),
sentence_bert_config.json caps the tokens (`max_seq_length`, e.g. 256 for all-MiniLM-L6-v2,
below BERT's 512) and may lower-case the text, and config_sentence_transformers.json holds named
prompts ("query: ") and the similarity function the model was trained for. `SentenceConfig`
gathers them so that `embed()` reproduces `SentenceTransformer(folder).encode()`; a folder
without modules.json is a bare BERT (mean pooling, no normalisation, the model's own limit).
It reads files only (no torch); bertkit.inference.sentence pools as the recipe says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError

POOLINGS = ("mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# the legacy 1_Pooling/config.json switches, in the order sentence-transformers concatenates them
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_MODULE_KINDS = ("Transformer", "Pooling", "Normalize")
SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")


@dataclass(frozen=True)
class SentenceConfig:
    """How a folder's sentence vectors are made (defaults: a bare BERT folder)."""

    pooling: tuple[str, ...] = ("mean",)
    normalize: bool = False
    max_seq_len: int | None = None  # tokens kept per text, [CLS] and [SEP] included
    do_lower_case: bool = False
    include_prompt: bool = True  # whether prompt tokens count in the pooling
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str = "cosine"
    sentence_transformers: bool = False  # read from a sentence-transformers folder

    def prompt_for(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The text put before every input: `prompt`, else the named one, else the folder's default."""
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise BertkitError(f"prompt_name {name!r} is not one of this model's prompts ({known})")
        return self.prompts[name]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg})", err.lineno) from None
    except UnicodeDecodeError:
        raise InputFileError(path, "not UTF-8 text") from None


def read_modules(folder: Path) -> list[dict[str, Any]]:
    """modules.json's list of {"type", "path", ...}, checked: every module must be one bertkit runs."""
    path = folder / "modules.json"
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise InputFileError(path, 'must be a JSON list of {"type": ..., "path": ...} modules')
    for m in modules:
        if not str(m["type"]).endswith(_MODULE_KINDS):
            raise InputFileError(
                path,
                f"module {m['type']} ({m.get('path') or m.get('name')}) is not one bertkit runs "
                f"({', '.join(_MODULE_KINDS)}); its vectors would differ from SentenceTransformer's",
            )
    return modules


def transformer_folder(folder: Path) -> Path:
    """Where the BERT files of a folder are: older sentence-transformers folders keep them in a
    sub-folder named by modules.json (e.g. 0_Transformer/)."""
    if (folder / "config.json").is_file() or not (folder / "modules.json").is_file():
        return folder
    for module in read_modules(folder):
        if module["type"].endswith("Transformer") and module.get("path"):
            return folder / module["path"]
    return folder


def sentence_config(folder: str | Path | None) -> SentenceConfig:
    """The SentenceConfig of a model folder (a bare BERT's defaults when it has no modules.json).

    An older layout keeps the BERT in a sub-folder (0_Transformer/); given that sub-folder, the
    recipe is read from its parent.
    """
    recipe = recipe_folder(folder)
    return SentenceConfig() if recipe is None else _read_folder(recipe, read_modules(recipe))


def recipe_folder(folder: str | Path | None) -> Path | None:
    """The folder whose modules.json describes `folder`'s BERT: the folder itself, or its parent
    when the BERT sits in the parent's Transformer sub-folder; None for a bare BERT."""
    if folder is None:
        return None
    folder = Path(folder)
    if (folder / "modules.json").is_file():
        return folder
    parent = folder.parent
    if (parent / "modules.json").is_file() and any(
        m.get("path") == folder.name for m in read_modules(parent) if str(m["type"]).endswith("Transformer")
    ):
        return parent
    return None


def _read_folder(folder: Path, modules: list[dict[str, Any]]) -> SentenceConfig:
    options: dict[str, Any] = {"sentence_transformers": True}
    for m in modules:
        kind, sub = str(m["type"]), folder / str(m.get("path") or "")
        if kind.endswith("Transformer"):
            bert_config = sub / "sentence_bert_config.json"
            if bert_config.is_file():
                values = read_json(bert_config)
                options["max_seq_len"] = values.get("max_seq_length")
                options["do_lower_case"] = bool(values.get("do_lower_case", False))
        elif kind.endswith("Pooling"):
            options["pooling"], options["include_prompt"] = _pooling_modes(sub / "config.json")
        elif kind.endswith("Normalize"):
            options["normalize"] = True
    if not any(str(m["type"]).endswith("Pooling") for m in modules):
        raise InputFileError(folder / "modules.json", "lists no Pooling module: bertkit cannot tell how to pool")
    extra = folder / "config_sentence_transformers.json"
    if extra.is_file():
        values = read_json(extra)
        options["prompts"] = dict(values.get("prompts") or {})
        options["default_prompt_name"] = values.get("default_prompt_name") or None
        name = values.get("similarity_fn_name") or "cosine"
        if name not in SIMILARITY_FUNCTIONS:
            raise InputFileError(extra, f"similarity_fn_name {name!r} is not one of {', '.join(SIMILARITY_FUNCTIONS)}")
        options["similarity_fn_name"] = name
    return SentenceConfig(**options)


def _pooling_modes(path: Path) -> tuple[tuple[str, ...], bool]:
    """(modes, include_prompt) from 1_Pooling/config.json, in its new or its legacy spelling."""
    if not path.is_file():
        return ("mean",), True  # sentence-transformers' default
    values = read_json(path)
    if "pooling_mode" in values:
        mode = values["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(name for key, name in _LEGACY_POOLING.items() if values.get(key)) or ("mean",)
    for mode in modes:
        if mode not in POOLINGS:
            raise InputFileError(path, f"pooling mode {mode!r} is not one of {', '.join(POOLINGS)}")
    return modes, bool(values.get("include_prompt", True))
