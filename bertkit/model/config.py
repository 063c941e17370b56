"""BertConfig: the sizes of a BERT network, with Hugging Face's field names.

The same object reads and writes Hugging Face `config.json` and Google's `bert_config.json`, so a
checkpoint from either world describes itself. Inconsistent sizes are refused here, with the fix,
instead of surfacing later as a shape error deep inside a matmul.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError

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
    pad_token_id: int = 0
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
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            if len(self.id2label) != self.num_labels:
                if self.num_labels != 2:  # 2 is the default: id2label then says how many labels there are
                    raise BertkitError(
                        f"BertConfig: num_labels {self.num_labels} disagrees with id2label "
                        f"({len(self.id2label)} labels); give one of them"
                    )
                self.num_labels = len(self.id2label)
        self.hidden_act = ACTIVATIONS.get(self.hidden_act, self.hidden_act)  # one name per function
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Refuse sizes that cannot make a network, naming the field and the fix."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "num_labels",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertkitError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise BertkitError(
                f"BertConfig: hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}; choose heads so that hidden_size / heads is an integer "
                f"(BERT uses hidden_size / 64)"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise BertkitError(
                f"BertConfig.hidden_act {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
                raise BertkitError(f"BertConfig.{name} must be in [0, 1), got {p!r}")
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise BertkitError(
                f"BertConfig.classifier_dropout must be in [0, 1) or None, got {self.classifier_dropout!r}"
            )
        if not self.layer_norm_eps > 0:
            raise BertkitError(f"BertConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.position_embedding_type != "absolute":
            raise BertkitError(
                f"BertConfig.position_embedding_type {self.position_embedding_type!r} is not supported; "
                f"bertkit implements BERT's learned absolute positions ('absolute')"
            )
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise BertkitError(
                f"BertConfig.pad_token_id {self.pad_token_id} is outside the vocabulary (size {self.vocab_size})"
            )
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
        sizes = dict(
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
        if "label2id" in values and "id2label" not in values:
            values["id2label"] = {v: k for k, v in values["label2id"].items()}
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: values.pop(k) for k in list(values) if k in known}
        values.pop("label2id", None)
        kwargs["extra"] = values
        try:
            return cls(**kwargs)
        except TypeError as err:  # a field of the wrong type, e.g. a string where a number belongs
            raise BertkitError(f"config has a value of the wrong type: {err}") from None

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
            changes["id2label"] = {v: k for k, v in changes.pop("label2id").items()}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise BertkitError(f"BertConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ Hugging Face files
    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> BertConfig:
        """Read a Hugging Face config.json (or Google's bert_config.json, recognised by its name)."""
        path = Path(path)
        if path.name == "bert_config.json":
            return cls.from_google_json(path)
        values = _read_json(path)
        try:
            return cls.from_dict(values)
        except BertkitError as err:
            raise InputFileError(path, str(err)) from None

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> BertConfig:
        """The config of a checkpoint folder: config.json, else Google's bert_config.json."""
        folder = Path(folder)
        if folder.is_file():
            config = cls.from_json_file(folder)
        elif (folder / "config.json").is_file():
            config = cls.from_json_file(folder / "config.json")
        elif (folder / "bert_config.json").is_file():
            config = cls.from_google_json(folder / "bert_config.json")
        elif folder.is_dir():
            raise InputFileError(
                folder / "config.json",
                "missing; a checkpoint folder needs config.json (Hugging Face) or bert_config.json (Google)",
            )
        else:
            raise InputFileError(folder, "no such checkpoint folder")
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
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        _write_json(path, self.to_hf_dict(architectures))
        return path

    # ------------------------------------------------------------------ Google files
    @classmethod
    def from_google_json(cls, path: str | os.PathLike) -> BertConfig:
        """Read google-research/bert's bert_config.json.

        Google's code computes "gelu" with the tanh formula, so that name maps to "gelu_tanh"
        here; outputs then match the TensorFlow model, not an erf approximation of it.
        """
        path = Path(path)
        values = _read_json(path)
        values = {
            k: v
            for k, v in values.items()
            if k in {f.name for f in dataclasses.fields(cls)} - {"extra", "id2label", "problem_type", "num_labels"}
        }
        if values.get("hidden_act") == "gelu":
            values["hidden_act"] = "gelu_tanh"
        try:
            return cls(**values)
        except (BertkitError, TypeError) as err:
            raise InputFileError(path, str(err)) from None

    def to_google_dict(self) -> dict[str, Any]:
        act = {"gelu_tanh": "gelu", "gelu": "gelu"}.get(self.hidden_act, self.hidden_act)
        return {
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "hidden_act": act,
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "type_vocab_size": self.type_vocab_size,
            "vocab_size": self.vocab_size,
        }

    def save_google_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        _write_json(path, self.to_google_dict())
        return path


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputFileError(path, "missing; a checkpoint folder needs its config file")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"not valid JSON ({err}); re-export the config") from None
    if not isinstance(values, dict):
        raise InputFileError(path, "must hold a JSON object of config fields")
    return values


def _write_json(path: Path, values: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
