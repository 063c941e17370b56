"""Hugging Face checkpoint folders: config.json + model.safetensors (or pytorch_model.bin).

Loading is forgiving about names and strict about meaning:
- "bert." prefixes are added or stripped to fit the model (a bare encoder checkpoint such as the
  packaged MiniLM loads into any head, a head checkpoint loads into BertModel);
- old spellings (LayerNorm gamma/beta, decoder.bias) are renamed, tied copies are dropped;
- weights the checkpoint lacks are initialised and *reported by name*, weights the model lacks
  are reported as unused, and wrongly shaped weights stop the load unless asked to re-initialise.
pytorch_model.bin is read only with `torch.load(weights_only=True)`: a pickle that tries to run
code is refused, never executed. Writing always produces safetensors, atomically.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertkit.errors import BertkitError, InputFileError
from bertkit.hub import resolve_folder
from bertkit.model.config import BertConfig

logger = logging.getLogger("bertkit")

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
# keys that hold no weights of ours: buffers of other implementations
_IGNORED = re.compile(r"(^|\.)embeddings\.position_ids$|(^|\.)embeddings\.token_type_ids$")
_TIED = {"cls.predictions.decoder.weight"}  # shares storage with the word embeddings


@dataclass
class LoadReport:
    """What happened to each weight name when a checkpoint met a model."""

    missing: list[str] = field(default_factory=list)  # model wants it, checkpoint lacks it -> initialised
    unexpected: list[str] = field(default_factory=list)  # checkpoint has it, model has no place for it
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (name, checkpoint, model shape)

    @property
    def newly_initialized(self) -> list[str]:
        return sorted(self.missing + [name for name, _, _ in self.mismatched])

    def summary(self, model_name: str = "model") -> str:
        lines = []
        if self.newly_initialized:
            lines.append(
                f"{model_name}: newly initialised (not in the checkpoint; train before use): "
                + ", ".join(self.newly_initialized)
            )
        if self.mismatched:
            lines.append(
                f"{model_name}: re-initialised because shapes differ: "
                + ", ".join(f"{n} (checkpoint {list(a)} vs model {list(b)})" for n, a, b in self.mismatched)
            )
        if self.unexpected:
            lines.append(f"{model_name}: unused checkpoint weights: " + ", ".join(self.unexpected))
        return "\n".join(lines)


# ---------------------------------------------------------------------- reading weights
def read_state_dict(folder: Path, verify: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint folder, whichever of the known layouts it uses."""
    if (folder / SAFE_WEIGHTS).is_file():
        return read_safetensors(folder / SAFE_WEIGHTS)
    if (folder / SAFE_INDEX).is_file():
        return _read_sharded(folder / SAFE_INDEX)
    if (folder / PT_WEIGHTS).is_file():
        return read_torch_bin(folder / PT_WEIGHTS)
    from bertkit.checkpoint.google import is_google_folder, read_google_state_dict

    if is_google_folder(folder):
        return read_google_state_dict(folder, verify=verify)
    raise InputFileError(
        folder,
        f"no weights found; expected {SAFE_WEIGHTS}, {PT_WEIGHTS} or a TensorFlow checkpoint (bert_model.ckpt.index)",
    )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for every kind of damage
        raise InputFileError(
            path, f"corrupt or truncated safetensors file ({err}); download or save it again"
        ) from None


def _read_sharded(index_path: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputFileError(index_path, f"not a safetensors index ({err})") from None
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        if "/" in shard or "\\" in shard or shard.startswith("."):
            raise InputFileError(index_path, f"shard name {shard!r} points outside the folder")
        state.update(read_safetensors(index_path.parent / shard))
    return state


def read_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    """A pickled state dict, loaded with weights_only=True: tensors and plain containers only."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(
            path,
            f"refused: the pickle holds objects other than tensors ({first}); "
            "nothing was executed. Load only trusted files, or convert them to safetensors",
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise InputFileError(path, f"corrupt or truncated PyTorch file ({err}); download or save it again") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputFileError(path, "does not hold a state dict (a mapping of names to tensors)")
    return state


# ---------------------------------------------------------------------- fitting names to a model
def normalize_keys(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's keys to the model's: old spellings, aliases and the "bert." prefix."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _IGNORED.search(key):
            continue
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        out[key] = value
    prefix = getattr(model, "base_model_prefix", "bert") + "."
    expected = set(model_keys(model))
    has_base = any(k.startswith(prefix) for k in expected)
    ckpt_prefixed = any(k.startswith(prefix) for k in out)
    if has_base and not ckpt_prefixed:  # bare encoder checkpoint -> head model
        out = {(prefix + k if prefix + k in expected else k): v for k, v in out.items()}
    elif not has_base and ckpt_prefixed:  # head checkpoint -> bare encoder
        out = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in out.items()}
    # the decoder bias is an alias of cls.predictions.bias in Hugging Face's BertLMPredictionHead
    alias = "cls.predictions.decoder.bias"
    if alias in out:
        bias = out.pop(alias)
        out.setdefault("cls.predictions.bias", bias)
    for key in _TIED:
        out.pop(key, None)
    return out


def model_keys(model: torch.nn.Module) -> dict[str, torch.Size]:
    """The model's state-dict keys (Hugging Face names) and shapes, tied copies left out."""
    return {k: v.shape for k, v in model.state_dict().items() if k not in _TIED}


def load_state_into(
    model: torch.nn.Module, state: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False
) -> LoadReport:
    """Copy matching weights into `model`; returns what was missing, unused or mis-shaped."""
    state = normalize_keys(state, model)
    expected = model_keys(model)
    report = LoadReport()
    report.missing = sorted(k for k in expected if k not in state)
    report.unexpected = sorted(k for k in state if k not in expected)
    mismatched = [
        (k, tuple(state[k].shape), tuple(expected[k]))
        for k in sorted(state)
        if k in expected and tuple(state[k].shape) != tuple(expected[k])
    ]
    if mismatched and not ignore_mismatched_sizes:
        detail = ", ".join(f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in mismatched)
        raise BertkitError(
            f"checkpoint weights have the wrong shape for this model: {detail}. Fix the config to match "
            f"the checkpoint, or pass ignore_mismatched_sizes=True to re-initialise them"
        )
    report.mismatched = mismatched
    current = model.state_dict()
    merged = {
        k: (state[k] if k in state and (k, tuple(state[k].shape), tuple(expected[k])) not in mismatched else current[k])
        for k in expected
    }
    with torch.no_grad():
        model.load_state_dict(merged, strict=False)
    return report


# ---------------------------------------------------------------------- from_pretrained / save_pretrained
def load_pretrained(
    cls,
    name_or_path: str | os.PathLike,
    config: BertConfig | None = None,
    *,
    dtype: torch.dtype | None = None,
    ignore_mismatched_sizes: bool = False,
    output_loading_info: bool = False,
    verify: bool = True,
    **config_overrides: Any,
):
    """Build `cls` from a checkpoint folder; config_overrides (e.g. num_labels=3) change the config."""
    dtype = config_overrides.pop("torch_dtype", dtype)  # Hugging Face's older spelling
    folder = resolve_folder(name_or_path)
    if config is None:
        config = BertConfig.from_pretrained(folder)
    if config_overrides:
        config = config.copy(**config_overrides)
    state = read_state_dict(folder, verify=verify)
    model = cls(config)
    report = load_state_into(model, state, ignore_mismatched_sizes=ignore_mismatched_sizes)
    text = report.summary(cls.__name__)
    if text:
        logger.warning(text)
    model.name_or_path = str(folder)
    model.loading_info = report
    if isinstance(dtype, str):  # "bfloat16", "float16", "float32"; "auto" keeps float32
        names = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in names:
            raise BertkitError(f"dtype {dtype!r}: use a torch dtype or one of {', '.join(names)}")
        dtype = names[dtype]
    if dtype is not None:
        model.to(dtype)
    model.eval()  # as in Hugging Face: loaded models start in inference mode; call .train() to fine-tune
    return (model, report) if output_loading_info else model


def save_pretrained(model: torch.nn.Module, folder: str | os.PathLike) -> Path:
    """config.json + model.safetensors in Hugging Face's layout; each file replaced atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # clone: the fused qkv splits into views of one storage, which safetensors refuses to share
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items() if k not in _TIED}
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt"})
        os.replace(tmp, folder / SAFE_WEIGHTS)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    model.config.save_pretrained(folder, architectures=[type(model).__name__])
    return folder
