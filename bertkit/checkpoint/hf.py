"""Hugging Face checkpoint folders: the weights files, and fitting their names to a model.

Reading: model.safetensors, a sharded model.safetensors.index.json, pytorch_model.bin, or a Google
TensorFlow checkpoint (google.py), each into a state dict with Hugging Face keys; `read_shapes`
gives the shapes alone (from the file headers, without reading the tensors), so that a model is
compared with its checkpoint before it is allocated.
pytorch_model.bin is read only with `torch.load(weights_only=True)`: a pickle that tries to run
code is refused, never executed.

Fitting names is forgiving about names and strict about meaning:
- "bert." prefixes are added or stripped to fit the model (a bare encoder checkpoint such as the
  packaged MiniLM loads into any head, a head checkpoint loads into BertModel);
- old spellings (LayerNorm gamma/beta, decoder.bias) are renamed, tied copies are dropped;
- weights the checkpoint lacks are reported as missing, weights the model lacks as unused, and
  wrongly shaped weights stop the load unless asked to re-initialise them.

Writing: `write_weights` replaces the weights file atomically (bertkit.files), as safetensors or,
when asked, as a pytorch_model.bin of plain tensors. This package never imports bertkit.model.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bertkit.checkpoint.configfiles import read_json_object
from bertkit.checkpoint.google import is_google_folder, read_google_shapes, read_google_state_dict
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_path
from bertkit.log import get_logger

logger = get_logger(__name__)

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
# keys that hold no weights of ours: buffers of other implementations
_IGNORED = re.compile(r"(^|\.)embeddings\.position_ids$|(^|\.)embeddings\.token_type_ids$")
TIED = frozenset({"cls.predictions.decoder.weight"})  # shares storage with the word embeddings

V = TypeVar("V")
Shape = tuple[int, ...]


@dataclass
class LoadReport:
    """What happened to each weight name when a checkpoint met a model."""

    missing: list[str] = field(default_factory=list)  # model wants it, checkpoint lacks it -> initialised
    unexpected: list[str] = field(default_factory=list)  # checkpoint has it, model has no place for it
    mismatched: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # (name, checkpoint, model shape)

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
        state: dict[str, torch.Tensor] = {}
        for shard in read_shard_names(folder / SAFE_INDEX):
            state.update(read_safetensors(folder / shard))
        return state
    if (folder / PT_WEIGHTS).is_file():
        return read_torch_bin(folder / PT_WEIGHTS)
    if is_google_folder(folder):
        return read_google_state_dict(folder, verify=verify)
    raise _no_weights(folder)


def read_shapes(folder: Path, verify: bool = True) -> dict[str, Shape] | None:
    """Every weight's shape, read from the headers only; None where the format has no header
    (pytorch_model.bin: a pickle, whose shapes are known only once it is loaded)."""
    if (folder / SAFE_WEIGHTS).is_file():
        return read_safetensors_shapes(folder / SAFE_WEIGHTS)
    if (folder / SAFE_INDEX).is_file():
        shapes: dict[str, Shape] = {}
        for shard in read_shard_names(folder / SAFE_INDEX):
            shapes.update(read_safetensors_shapes(folder / shard))
        return shapes
    if (folder / PT_WEIGHTS).is_file():
        return None
    if is_google_folder(folder):
        return read_google_shapes(folder, verify=verify)
    raise _no_weights(folder)


def _no_weights(folder: Path) -> InputFileError:
    return InputFileError(
        folder,
        f"no weights found; expected {SAFE_WEIGHTS}, {PT_WEIGHTS} or a TensorFlow checkpoint (bert_model.ckpt.index)",
    )


def _safetensors_error(path: Path, err: Exception) -> InputFileError:
    if not path.is_file():
        return InputFileError(path, "missing; the checkpoint's shard index names it: download every shard")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return InputFileError(path, f"corrupt or truncated safetensors file ({first}); download or save it again")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for every kind of damage
        raise _safetensors_error(path, err) from None


def read_safetensors_shapes(path: Path) -> dict[str, Shape]:
    """name -> shape from a safetensors header (the tensors are not read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except Exception as err:
        raise _safetensors_error(path, err) from None


def read_shard_names(index_path: Path) -> list[str]:
    """The shard files of a sharded safetensors checkpoint, each a plain file name in its folder."""
    weight_map = read_json_object(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise InputFileError(index_path, 'needs "weight_map": an object of weight name -> shard file name')
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if not shard or "/" in shard or "\\" in shard or shard.startswith(".") or os.path.isabs(shard) or ":" in shard:
            raise InputFileError(index_path, f"shard name {shard!r} points outside the folder; give a plain file name")
    return shards


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
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputFileError(path, f"corrupt or truncated PyTorch file ({first}); download or save it again") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputFileError(path, "does not hold a state dict (a mapping of names to tensors)")
    return state


# ---------------------------------------------------------------------- writing weights
def write_weights(tensors: Mapping[str, torch.Tensor], folder: Path, safe_serialization: bool = True) -> Path:
    """model.safetensors (or pytorch_model.bin of plain tensors), replaced atomically and fsynced.

    Weights of the other layout left in the folder by an earlier save are removed afterwards:
    the loader prefers model.safetensors, so a stale one would silently win over new weights.
    A failing write (a full disk) leaves the previous file as it was and raises a one-line error.
    """
    path = folder / (SAFE_WEIGHTS if safe_serialization else PT_WEIGHTS)
    try:
        with atomic_path(path) as tmp:
            if safe_serialization:
                save_file(dict(tensors), str(tmp), metadata={"format": "pt"})
            else:
                torch.save(dict(tensors), tmp)
    except OSError as err:
        raise BertkitError(
            f"{path}: cannot write ({err.strerror or err}); the previous file is unchanged: free space "
            "or choose another folder"
        ) from err
    stale = [folder / name for name in (SAFE_WEIGHTS, PT_WEIGHTS, SAFE_INDEX) if folder / name != path]
    if (folder / SAFE_INDEX).is_file():
        try:
            stale += [folder / shard for shard in read_shard_names(folder / SAFE_INDEX)]
        except InputFileError:
            pass  # a damaged index: it goes, its shards cannot be named safely and stay
    for old in stale:
        if old.is_file():
            logger.info(f"removing {old}: replaced by {path.name}")
            old.unlink()
    return path


# ---------------------------------------------------------------------- fitting names to a model
def model_keys(model: torch.nn.Module) -> dict[str, Shape]:
    """The model's state-dict keys (Hugging Face names) and shapes, tied copies left out."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in TIED}


def normalize_keys(state: Mapping[str, V], model: torch.nn.Module) -> dict[str, V]:
    """Rename a checkpoint's keys to the model's: old spellings, aliases and the "bert." prefix.

    `state` maps names to tensors or to shapes (the same renaming serves both).
    """
    out: dict[str, V] = {}
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
    for key in TIED:
        out.pop(key, None)
    return out


def compare_shapes(
    shapes: Mapping[str, Shape], expected: Mapping[str, Shape], ignore_mismatched_sizes: bool = False
) -> list[tuple[str, Shape, Shape]]:
    """(name, checkpoint shape, model shape) for every weight whose shapes differ; an error unless
    asked to re-initialise them. `shapes` has the model's names already (normalize_keys)."""
    mismatched = [
        (k, tuple(shapes[k]), tuple(expected[k]))
        for k in sorted(shapes)
        if k in expected and tuple(shapes[k]) != tuple(expected[k])
    ]
    if mismatched and not ignore_mismatched_sizes:
        shown = mismatched[:6]
        detail = ", ".join(f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in shown)
        more = f" and {len(mismatched) - len(shown)} more" if len(mismatched) > len(shown) else ""
        raise BertkitError(
            f"checkpoint weights have the wrong shape for this model: {detail}{more}. Fix the config to match "
            f"the checkpoint, or pass ignore_mismatched_sizes=True to re-initialise them"
        )
    return mismatched


def load_state_into(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], ignore_mismatched_sizes: bool = False
) -> LoadReport:
    """Copy matching weights into `model`; returns what was missing, unused or mis-shaped."""
    fitted = normalize_keys(state, model)
    expected = model_keys(model)
    report = LoadReport()
    report.missing = sorted(k for k in expected if k not in fitted)
    report.unexpected = sorted(k for k in fitted if k not in expected)
    shapes = {k: tuple(v.shape) for k, v in fitted.items()}
    report.mismatched = compare_shapes(shapes, expected, ignore_mismatched_sizes)
    skip = {name for name, _, _ in report.mismatched}
    current = model.state_dict()
    merged: dict[str, Any] = {k: (fitted[k] if k in fitted and k not in skip else current[k]) for k in expected}
    with torch.no_grad():
        model.load_state_dict(merged, strict=False)
    return report
