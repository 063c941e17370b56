"""Google's original BERT release (google-research/bert) -> Hugging Face names, without TensorFlow.

A release folder holds `bert_config.json`, `vocab.txt` and a TensorFlow checkpoint
(`bert_model.ckpt.index` + `.data-00000-of-00001`). Variable names map to Hugging Face keys by
rule: `/` -> `.`, `layer_N` -> `layer.N`, LayerNorm `gamma`/`beta` -> `weight`/`bias`, and dense
`kernel` -> `weight` *transposed* (TF stores [in, out], torch.nn.Linear [out, in]).
`cls/seq_relationship/output_weights` is already [2, H] and is not transposed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from bertkit.checkpoint.tf_bundle import TFCheckpoint
from bertkit.errors import InputFileError
from bertkit.model.config import BertConfig

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


def read_google_state_dict(folder: str | os.PathLike, verify: bool = True) -> dict[str, torch.Tensor]:
    """Read a Google checkpoint -> state dict with Hugging Face keys (optimizer state dropped)."""
    ckpt = TFCheckpoint(folder, verify=verify)
    state: dict[str, torch.Tensor] = {}
    for name in ckpt.names():
        mapped = google_to_hf_name(name)
        if mapped is None:
            continue
        key, transpose = mapped
        array = ckpt.read(name)
        if transpose:
            if array.ndim != 2:
                raise InputFileError(
                    ckpt.index_path, f"variable {name!r} is a kernel but has shape {list(array.shape)}"
                )
            array = array.T
        state[key] = torch.from_numpy(np.ascontiguousarray(array))
    return state


def is_google_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.ckpt*.index"))


def load_google_config(folder: Path) -> BertConfig:
    path = folder / "bert_config.json"
    if not path.is_file():
        raise InputFileError(path, "missing; Google's release folders hold bert_config.json beside the checkpoint")
    return BertConfig.from_google_json(path)


def guess_lowercase(vocab_path: Path) -> bool | None:
    """Uncased releases have (almost) no capitalised word pieces; cased ones have thousands."""
    if not vocab_path.is_file():
        return None
    words = vocab_path.read_text(encoding="utf-8").splitlines()
    capitalised = sum(1 for w in words if w[:1].isupper() and not w.startswith("["))
    return capitalised < 0.01 * max(len(words), 1)


def convert_google_checkpoint(folder: str | os.PathLike, out: str | os.PathLike, verify: bool = True):
    """Google release folder -> Hugging Face folder (config.json, model.safetensors, vocab.txt).

    Builds BertForPreTraining when the checkpoint carries the pretraining heads (cls/...), else
    BertModel; returns the loaded model and its load report.
    """
    from bertkit.checkpoint.hf import load_pretrained
    from bertkit.model.bert import BertModel
    from bertkit.model.heads import BertForPreTraining

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise InputFileError(
            folder, "no such folder; give the unpacked release folder (bert_config.json, vocab.txt, bert_model.ckpt.*)"
        )
    ckpt_names = TFCheckpoint(folder, verify=False).names()
    cls = BertForPreTraining if any(n.startswith("cls/predictions") for n in ckpt_names) else BertModel
    model, report = load_pretrained(cls, folder, output_loading_info=True, verify=verify)
    model.save_pretrained(out)
    vocab = folder / "vocab.txt"
    if vocab.is_file():
        shutil.copyfile(vocab, out / "vocab.txt")
        lower = guess_lowercase(vocab)
        if lower is not None:
            tok_config = {
                "do_lower_case": lower,
                "model_max_length": model.config.max_position_embeddings,
                "tokenizer_class": "BertTokenizer",
            }
            (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    return model, report
