"""BertConfig: the sizes of a BERT network, with Hugging Face's field names.

The same object reads and writes Hugging Face `config.json` and Google's `bert_config.json`, so a
checkpoint from either world describes itself. Inconsistent sizes are refused here, with the fix,
instead of surfacing later as a shape error deep inside a matmul; so are values of the wrong type
and sizes beyond MAX_SIZES, before anything is allocated for them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.checkpoint.configfiles import GOOGLE_CONFIG, google_config_dict, read_google_config, read_json_object
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write_json
from bertkit.hub import resolve_folder

# Activation names we run, with Hugging Face's aliases. "gelu" is the exact (erf) GELU;
# "gelu_tanh" is the seed's tanh formula 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}

# Google's compact models (BERT-Tiny ... BERT-Large): name -> (layers, hidden).
_NAMED_SIZES = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}
GRID_LAYERS = (2, 4, 6, 8, 10, 12)
GRID_HIDDEN = (128, 256, 512, 768)

# The largest size a config may ask for. Each is far above any published BERT (vocab 250k,
# hidden 4096, 48 layers, 8192 positions) and far below what would exhaust memory by accident
# when a damaged or hostile config.json (vocab_size: 10**12) is read.
MAX_SIZES = {
    "vocab_size": 4_000_000,
    "hidden_size": 65_536,
    "num_hidden_layers": 1_024,
    "num_attention_heads": 4_096,
    "intermediate_size": 262_144,
    "max_position_embeddings": 1_048_576,
    "type_vocab_size": 65_536,
    "num_labels": 1_000_000,
}

# Keys of Hugging Face's config.json that describe the file, not the network.
_HF_BOOKKEEPING = {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures", "model_type"}


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    # task heads
    num_labels: int = 2
    id2label: dict[int, str] | None = None
    problem_type: str | None = None  # "regression" | "single_label_classification" | "multi_label_classification"
    classifier_dropout: float | None = None
    # keys we do not interpret, kept so that a config survives a load -> save round trip
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = _labels(self.id2label)
            if len(self.id2label) != self.num_labels:
                if self.num_labels != 2:  # 2 is the default: id2label then says how many labels there are
                    raise BertkitError(
                        f"BertConfig: num_labels {self.num_labels} disagrees with id2label "
                        f"({len(self.id2label)} labels); give one of them"
                    )
                self.num_labels = len(self.id2label)
        if isinstance(self.hidden_act, str):
            self.hidden_act = ACTIVATIONS.get(self.hidden_act, self.hidden_act)  # one name per function
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Refuse values that cannot make a network, naming the field and the fix."""
        for name, limit in MAX_SIZES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertkitError(f"BertConfig.{name} must be a positive integer, got {value!r}")
            if value > limit:
                raise BertkitError(
                    f"BertConfig.{name} is {value:,}, above bertkit's limit of {limit:,}; the config is damaged "
                    f"or not a BERT config"
                )
        if self.hidden_size % self.num_attention_heads:
            raise BertkitError(
                f"BertConfig: hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}; choose heads so that hidden_size / heads is an integer "
                f"(BERT uses hidden_size / 64)"
            )
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACTIVATIONS:
            raise BertkitError(
                f"BertConfig.hidden_act {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            p = getattr(self, name)
            if not (p is None and name == "classifier_dropout") and not (_is_number(p) and 0.0 <= p < 1.0):
                raise BertkitError(f"BertConfig.{name} must be in [0, 1), got {p!r}")
        if not _is_number(self.layer_norm_eps) or not 0 < self.layer_norm_eps < math.inf:
            raise BertkitError(f"BertConfig.layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")
        if not _is_number(self.initializer_range) or not 0 <= self.initializer_range < math.inf:
            raise BertkitError(f"BertConfig.initializer_range must be a number >= 0, got {self.initializer_range!r}")
        if self.position_embedding_type != "absolute":
            raise BertkitError(
                f"BertConfig.position_embedding_type {self.position_embedding_type!r} is not supported; "
                f"bertkit implements BERT's learned absolute positions ('absolute')"
            )
        pad = self.pad_token_id
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < self.vocab_size):
            raise BertkitError(f"BertConfig.pad_token_id {pad!r} is outside the vocabulary (size {self.vocab_size})")
        if self.problem_type not in (None, "regression", "single_label_classification", "multi_label_classification"):
            raise BertkitError(
                f"BertConfig.problem_type {self.problem_type!r} is not one of regression, "
                f"single_label_classification, multi_label_classification"
            )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def label2id(self) -> dict[str, int]:
        return {v: k for k, v in (self.id2label or {}).items()}

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A named size: tiny/mini/small/medium/base/large, or the seed's grid "L4-H256".

        Heads are hidden/64 and the feed-forward is 4 x hidden, as in Google's releases.
        """
        key = name.strip().lower()
        grid = re.fullmatch(r"l(\d+)-h(\d+)", key)
        if key in _NAMED_SIZES:
            layers, hidden = _NAMED_SIZES[key]
        elif grid:
            layers, hidden = int(grid.group(1)), int(grid.group(2))
            if layers not in GRID_LAYERS or hidden not in GRID_HIDDEN:
                raise BertkitError(
                    f"preset {name!r} is off the grid: L must be one of {GRID_LAYERS} and H one of {GRID_HIDDEN}"
                )
        else:
            raise BertkitError(
                f"unknown preset {name!r}; use one of {sorted(_NAMED_SIZES)} or 'L<layers>-H<hidden>' "
                f"with L in {GRID_LAYERS}, H in {GRID_HIDDEN}"
            )
        sizes: dict[str, Any] = dict(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64, intermediate_size=4 * hidden
        )
        sizes.update(overrides)
        return cls(**sizes)

    @staticmethod
    def preset_names() -> list[str]:
        return list(_NAMED_SIZES) + [f"L{l}-H{h}" for l in GRID_LAYERS for h in GRID_HIDDEN]

    # ------------------------------------------------------------------ dicts
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BertConfig:
        """Build from a Hugging Face style dict; keys we do not know are kept in `extra`."""
        values = dict(values)
        model_type = values.get("model_type")
        if model_type not in (None, "bert"):
            raise BertkitError(
                f"config model_type is {model_type!r}; bertkit loads BERT checkpoints (model_type 'bert')"
            )
        if values.get("label2id") is not None:  # transformers may write null
            inverse = _inverse_labels(values["label2id"])  # checked even where id2label wins
            if values.get("id2label") is None:
                values["id2label"] = inverse
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: values.pop(k) for k in list(values) if k in known}
        values.pop("label2id", None)
        kwargs["extra"] = values
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}
        if self.id2label is None:
            out.pop("id2label")
        else:
            out["id2label"] = {str(k): v for k, v in self.id2label.items()}
            out["label2id"] = self.label2id
        return out

    def copy(self, **changes: Any) -> BertConfig:
        """A changed copy; a new num_labels without new id2label drops the old label names."""
        if (
            "num_labels" in changes
            and "id2label" not in changes
            and self.id2label is not None
            and len(self.id2label) != changes["num_labels"]
        ):
            changes["id2label"] = None
        if "label2id" in changes:
            changes["id2label"] = _inverse_labels(changes.pop("label2id"))
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise BertkitError(f"BertConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ Hugging Face files
    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> BertConfig:
        """Read a Hugging Face config.json (or Google's bert_config.json, recognised by its name)."""
        path = Path(path)
        if path.name == GOOGLE_CONFIG:
            return cls.from_google_json(path)
        values = read_json_object(path, "a checkpoint folder needs config.json (Hugging Face) or bert_config.json")
        try:
            return cls.from_dict(values)
        except BertkitError as err:
            raise InputFileError(path, str(err)) from None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        **overrides: Any,
    ) -> BertConfig:
        """The config of a checkpoint folder or hub repository (config.json, else Google's
        bert_config.json), or of a config file; `overrides` change fields of it."""
        if Path(name_or_path).is_file():
            config = cls.from_json_file(name_or_path)
        else:
            folder = resolve_folder(
                name_or_path, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only
            )
            if (folder / "config.json").is_file():
                config = cls.from_json_file(folder / "config.json")
            elif (folder / GOOGLE_CONFIG).is_file():
                config = cls.from_google_json(folder / GOOGLE_CONFIG)
            else:
                raise InputFileError(
                    folder / "config.json",
                    "missing; a checkpoint folder needs config.json (Hugging Face) or bert_config.json (Google)",
                )
        return config.copy(**overrides) if overrides else config

    def to_hf_dict(self, architectures: list[str] | None = None) -> dict[str, Any]:
        out = dict(self.extra)
        for key in _HF_BOOKKEEPING:
            out.pop(key, None)
        out.update(self.to_dict())
        # transformers knows the tanh GELU as "gelu_pytorch_tanh", not as our short name
        if out["hidden_act"] == "gelu_tanh":
            out["hidden_act"] = "gelu_pytorch_tanh"
        out["model_type"] = "bert"
        if architectures:
            out["architectures"] = list(architectures)
        return dict(sorted(out.items()))

    def save_pretrained(self, folder: str | os.PathLike, architectures: list[str] | None = None) -> Path:
        """config.json in `folder` (created), replaced atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(folder / "config.json", self.to_hf_dict(architectures))

    # ------------------------------------------------------------------ Google files
    @classmethod
    def from_google_json(cls, path: str | os.PathLike) -> BertConfig:
        """Read google-research/bert's bert_config.json (its "gelu" is the tanh formula: gelu_tanh)."""
        path = Path(path)
        try:
            return cls(**read_google_config(path))
        except BertkitError as err:
            if isinstance(err, InputFileError):
                raise
            raise InputFileError(path, str(err)) from None

    def to_google_dict(self) -> dict[str, Any]:
        return google_config_dict(self.to_dict())

    def save_google_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_google_dict())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _labels(id2label: Any) -> dict[int, str]:
    """id2label as {int: str}; JSON gives its keys as strings ("0"), which are read as integers."""
    if not isinstance(id2label, dict):
        raise BertkitError(f"id2label must be an object {{id: label}}, got a {type(id2label).__name__}")
    out = {}
    for key, label in id2label.items():
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit())):
            raise BertkitError(f"id2label keys must be label ids (0, 1, ...), got {key!r}")
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise BertkitError(f"id2label values must be label names, got {label!r} for id {key}")
        out[int(key)] = str(label)
    return out


def _inverse_labels(label2id: Any) -> dict[Any, Any]:
    """label2id -> id2label (checked by _labels afterwards)."""
    if not isinstance(label2id, dict):
        raise BertkitError(f"label2id must be an object {{label: id}}, got a {type(label2id).__name__}")
    inverse = {v: k for k, v in label2id.items() if isinstance(v, (int, str)) and not isinstance(v, bool)}
    if len(inverse) != len(label2id):
        raise BertkitError("label2id must map each label to a distinct id (0, 1, ...)")
    return inverse
