"""The small JSON files of a checkpoint folder: config.json, Google's bert_config.json, the shard index.

One reader, so that every way such a file can be wrong ends in the same kind of one-line error
naming the file: missing, not UTF-8, not JSON (with its line), nested too deep for the parser, or
not a JSON object. Google's config is translated to Hugging Face's field names here, as a dict:
the BertConfig object that checks the values lives in bertkit.model.config. Light on purpose
(no numpy, no torch): the config is read by commands that must start fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bertkit.errors import InputFileError

GOOGLE_CONFIG = "bert_config.json"
# the fields of bert_config.json (modeling.BertConfig); anything else in the file is ignored
_GOOGLE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
)


def read_json_object(path: Path, missing_hint: str = "") -> dict[str, Any]:
    """The JSON object in `path`; `missing_hint` says where the file should come from."""
    if not path.is_file():
        raise InputFileError(path, "missing" + (f"; {missing_hint}" if missing_hint else ""))
    data = path.read_bytes()
    try:
        values = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(path, "not UTF-8 text; save it as UTF-8 JSON", line) from None
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg}); re-export the file", err.lineno) from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply to be a config; the file is damaged") from None
    if not isinstance(values, dict):
        raise InputFileError(path, f"must hold a JSON object, not a {type(values).__name__}")
    return values


def read_google_config(path: str | os.PathLike) -> dict[str, Any]:
    """bert_config.json -> the same sizes under Hugging Face's config.json names.

    Google's code computes "gelu" with the tanh formula, so that name becomes "gelu_tanh": outputs
    then match the TensorFlow model, not an erf approximation of it.
    """
    values = read_json_object(Path(path), "Google's release folders hold bert_config.json beside the checkpoint")
    out = {k: v for k, v in values.items() if k in _GOOGLE_FIELDS}
    if out.get("hidden_act") == "gelu":
        out["hidden_act"] = "gelu_tanh"
    return out


def google_config_dict(values: dict[str, Any]) -> dict[str, Any]:
    """Hugging Face config values -> bert_config.json's fields (the tanh GELU is Google's "gelu")."""
    out = {k: values[k] for k in sorted(_GOOGLE_FIELDS) if k in values}
    if out.get("hidden_act") in ("gelu_tanh", "gelu"):
        out["hidden_act"] = "gelu"
    return out
