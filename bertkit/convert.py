"""Google's BERT release folder -> a Hugging Face folder that transformers and bertkit both load.

It sits above both packages it joins: bertkit.checkpoint reads the TF files, bertkit.model builds
the network (its from_pretrained converts a Google folder in memory), and this module writes the
result. Everything that can be wrong with the input is found before the output folder is touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bertkit.checkpoint.google import guess_lowercase, has_pretraining_heads
from bertkit.checkpoint.hf import LoadReport
from bertkit.errors import InputFileError
from bertkit.files import atomic_path, atomic_write_json, require_new_folder
from bertkit.model import BertForPreTraining, BertModel, BertPreTrainedModel


def convert_google_checkpoint(
    folder: str | os.PathLike, out: str | os.PathLike, verify: bool = True, overwrite: bool = False
) -> tuple[BertPreTrainedModel, LoadReport]:
    """Google release folder -> Hugging Face folder (config.json, model.safetensors, vocab.txt,
    tokenizer_config.json).

    Builds BertForPreTraining when the checkpoint carries the pretraining heads (cls/...), else
    BertModel; returns the loaded model and its load report. `out` must be new or empty unless
    overwrite=True.
    """
    folder, out = Path(folder), Path(out)
    require_new_folder(out, overwrite=overwrite)
    if not folder.is_dir():
        raise InputFileError(
            folder, "no such folder; give the unpacked release folder (bert_config.json, vocab.txt, bert_model.ckpt.*)"
        )
    vocab = folder / "vocab.txt"
    lower = guess_lowercase(vocab)  # reads the whole vocabulary: a non-UTF-8 one stops us here
    cls: type[BertPreTrainedModel] = BertForPreTraining if has_pretraining_heads(folder) else BertModel
    model, report = cls.from_pretrained(folder, output_loading_info=True, verify=verify)
    model.save_pretrained(out)
    if vocab.is_file():
        with atomic_path(out / "vocab.txt") as tmp:
            shutil.copyfile(vocab, tmp)
    if lower is not None:
        tok_config = {
            "do_lower_case": lower,
            "model_max_length": model.config.max_position_embeddings,
            "tokenizer_class": "BertTokenizer",
        }
        atomic_write_json(out / "tokenizer_config.json", tok_config)
    return model, report
