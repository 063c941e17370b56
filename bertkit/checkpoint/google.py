"""Google's original BERT release (google-research/bert) -> Hugging Face names, without TensorFlow.

A release folder holds `bert_config.json`, `vocab.txt` and a TensorFlow checkpoint
(`bert_model.ckpt.index` + `.data-00000-of-00001`). Variable names map to Hugging Face keys by
rule: `/` -> `.`, `layer_N` -> `layer.N`, LayerNorm `gamma`/`beta` -> `weight`/`bias`, and dense
`kernel` -> `weight` *transposed* (TF stores [in, out], torch.nn.Linear [out, in]).
`cls/seq_relationship/output_weights` is already [2, H] and is not transposed.

This module reads files into plain dicts and tensors; building a model from them is the model's
business (bertkit.model.pretrained), and writing a converted folder is bertkit.convert's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from bertkit.checkpoint.tf_bundle import TFCheckpoint
from bertkit.errors import InputFileError

# training-time variables with no place in the model
_SKIP = re.compile(r"(^|/)(adam_[mv]|global_step|bad_steps|good_steps|loss_scale|current_loss_scale)($|/)")

# whole-name mappings for the heads of Google's fine-tuning scripts
_FIXED = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    "output_weights": "classifier.weight",  # run_classifier.py
    "output_bias": "classifier.bias",
    "cls/squad/output_weights": "qa_outputs.weight",  # run_squad.py
    "cls/squad/output_bias": "qa_outputs.bias",
}


def google_to_hf_name(name: str) -> tuple[str, bool] | None:
    """A TF variable name -> (Hugging Face key, transpose?), or None for optimizer state."""
    if _SKIP.search(name):
        return None
    if name in _FIXED:
        return _FIXED[name], False
    parts = name.split("/")
    transpose = parts[-1] == "kernel"
    renamed = {"kernel": "weight", "gamma": "weight", "beta": "bias"}
    out = []
    for i, part in enumerate(parts):
        match = re.fullmatch(r"layer_(\d+)", part)
        if match:
            out.extend(["layer", match.group(1)])
        else:
            out.append(renamed.get(part, part) if i == len(parts) - 1 else part)
    if parts[-1] in ("word_embeddings", "token_type_embeddings", "position_embeddings"):
        out.append("weight")
    return ".".join(out), transpose


def _mapped(ckpt: TFCheckpoint) -> list[tuple[str, str, bool]]:
    """(TF name, Hugging Face key, transpose?) for every weight of the checkpoint."""
    out = []
    for name in ckpt.names():
        mapped = google_to_hf_name(name)
        if mapped is not None:
            key, transpose = mapped
            if transpose and len(ckpt.shape(name)) != 2:
                raise InputFileError(
                    ckpt.index_path, f"variable {name!r} is a kernel but has shape {list(ckpt.shape(name))}"
                )
            out.append((name, key, transpose))
    return out


def read_google_shapes(folder: str | os.PathLike, verify: bool = True) -> dict[str, tuple[int, ...]]:
    """The shape of every weight under its Hugging Face key, from the index alone (no tensor read)."""
    ckpt = TFCheckpoint(folder, verify=verify)
    shapes = {}
    for name, key, transpose in _mapped(ckpt):
        shape = ckpt.shape(name)
        shapes[key] = shape[::-1] if transpose else shape
    return shapes


def read_google_state_dict(folder: str | os.PathLike, verify: bool = True) -> dict[str, torch.Tensor]:
    """Read a Google checkpoint -> state dict with Hugging Face keys (optimizer state dropped)."""
    ckpt = TFCheckpoint(folder, verify=verify)
    state: dict[str, torch.Tensor] = {}
    for name, key, transpose in _mapped(ckpt):
        array = ckpt.read(name)
        state[key] = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))
    return state


def has_pretraining_heads(folder: str | os.PathLike) -> bool:
    """Whether the checkpoint carries the MLM head (cls/predictions/...), as pretraining releases do."""
    return any(name.startswith("cls/predictions") for name in TFCheckpoint(folder, verify=False).names())


def is_google_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.ckpt*.index"))


def read_vocab_lines(path: Path) -> list[str]:
    """vocab.txt's lines; a file that is not UTF-8 is refused naming its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(path, "not UTF-8 text; a BERT vocabulary is UTF-8, one word piece a line", line) from None


def guess_lowercase(vocab_path: Path) -> bool | None:
    """Uncased releases have (almost) no capitalised word pieces; cased ones have thousands."""
    if not vocab_path.is_file():
        return None
    words = read_vocab_lines(vocab_path)
    capitalised = sum(1 for w in words if w[:1].isupper() and not w.startswith("["))
    return capitalised < 0.01 * max(len(words), 1)
