"""Hugging Face tokenizer.json and tokenizer folders, read and written, so vocabularies move both ways.

Each pipeline component reads and writes its own part of the file (`from_json` / `to_json` in
normalizers.py, pre_tokenizers.py, the models, post_processors.py, decoders.py); this module
holds only the file-level steps: `read_tokenizer_json` (what `Tokenizer.from_file` builds from),
`tokenizer_json` and `save_folder`. Only the components bertkit implements are accepted (listed
in the error when one is not); a file we write loads in `tokenizers.Tokenizer.from_file` and
encodes identically. Every problem becomes an InputFileError naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bertkit.constants import BERT_SPECIAL_TOKENS
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write_json, atomic_write_text
from bertkit.tokenizers import decoders, normalizers, post_processors, pre_tokenizers
from bertkit.tokenizers.added_tokens import AddedToken
from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.models import Model, check_density
from bertkit.tokenizers.wordlevel import WordLevel
from bertkit.tokenizers.wordpiece import WordPiece, write_vocab_txt

MODEL_TYPES: dict[str, Any] = {"WordPiece": WordPiece, "BPE": BPE, "WordLevel": WordLevel}
# tokenizer_config.json names each special token by its role
ROLES = dict(zip(BERT_SPECIAL_TOKENS, ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")))
CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "do_lower_case": (bool,),
    "strip_accents": (bool, type(None)),
    "tokenize_chinese_chars": (bool,),
    "model_max_length": (int, float),
    "padding_side": (str,),
    "truncation_side": (str,),
}


def read_json_object(path: Path, what: str) -> dict:
    """A UTF-8 JSON file holding an object, or an InputFileError naming the file."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(path, f"not UTF-8 text; a {what} is UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        raise InputFileError(
            path, f"malformed JSON ({err.msg}, column {err.colno}); re-save the file", err.lineno
        ) from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply; re-save the file") from None
    if not isinstance(data, dict):
        raise InputFileError(path, f"a {what} holds a JSON object, not a {type(data).__name__}")
    return data


def read_tokenizer_json(path: str | os.PathLike) -> dict[str, Any]:
    """tokenizer.json -> the keyword arguments of `Tokenizer(...)` (pipeline, truncation, padding)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "tokenizer file not found; pass a Hugging Face tokenizer.json")
    data = read_json_object(path, "tokenizer.json")
    try:
        if not isinstance(data.get("model"), dict):
            raise BertkitError("no 'model' object; this is not a tokenizer.json")
        model = model_from_json(data["model"])
        added = data.get("added_tokens") or []
        if not isinstance(added, list):
            raise BertkitError("added_tokens must be a list")
        added_tokens = [AddedToken.from_json(t) for t in added]
        check_density([t.id for t in added_tokens], len(model.vocab) + len(added_tokens), "added_tokens")
        token_ids = dict(model.vocab) | {t.content: t.id for t in added_tokens}
        padding = _padding(data.get("padding"))
        return {
            "model": model,
            "normalizer": normalizers.from_json(data.get("normalizer")),
            "pre_tokenizer": pre_tokenizers.from_json(data.get("pre_tokenizer")),
            "post_processor": post_processors.from_json(data.get("post_processor"), token_ids),
            "decoder": decoders.from_json(data.get("decoder")),
            "added_tokens": added_tokens,
            "truncation": _truncation(data.get("truncation")),
            "padding": padding,
            "pad_token": (padding or {}).get("pad_token") or "[PAD]",
        }
    except BertkitError as err:
        raise InputFileError(path, str(err)) from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise InputFileError(
            path, f"malformed tokenizer.json ({type(err).__name__}: {err}); re-save it with Hugging Face or bertkit"
        ) from None


def model_from_json(m: dict) -> Model:
    kind = m.get("type") or ("BPE" if "merges" in m else "WordPiece" if "continuing_subword_prefix" in m else None)
    if kind not in MODEL_TYPES:
        raise BertkitError(f"model type {kind!r} is not supported (supported: {', '.join(MODEL_TYPES)})")
    return MODEL_TYPES[kind].from_json(m)


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BertkitError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def _direction(value: object) -> str:
    if value not in ("Left", "Right", "left", "right"):
        raise BertkitError(f"direction must be Left or Right, got {value!r}")
    return str(value).lower()


def _truncation(t: object) -> dict | None:
    if not t:
        return None
    if not isinstance(t, dict):
        raise BertkitError("truncation must be an object or null")
    strategies = {"LongestFirst": "longest_first", "OnlyFirst": "only_first", "OnlySecond": "only_second"}
    strategy = t.get("strategy", "LongestFirst")
    if strategy not in strategies:
        raise BertkitError(f"truncation strategy {strategy!r} is not one of {', '.join(strategies)}")
    return {
        "max_length": _whole(t.get("max_length"), "truncation.max_length"),
        "strategy": strategies[strategy],
        "stride": _whole(t.get("stride", 0), "truncation.stride"),
        "direction": _direction(t.get("direction", "Right")),
    }


def _padding(p: object) -> dict | None:
    if not p:
        return None
    if not isinstance(p, dict):
        raise BertkitError("padding must be an object or null")
    strategy = p.get("strategy", "BatchLongest")
    length = _whole(strategy.get("Fixed"), "padding.strategy.Fixed") if isinstance(strategy, dict) else None
    multiple = p.get("pad_to_multiple_of")
    pad_token = p.get("pad_token", "[PAD]")
    if not isinstance(pad_token, str):
        raise BertkitError(f"padding.pad_token must be a string, got {pad_token!r}")
    return {
        "length": length,
        "pad_to_multiple_of": None if multiple is None else _whole(multiple, "padding.pad_to_multiple_of"),
        "pad_id": _whole(p.get("pad_id", 0), "padding.pad_id"),
        "pad_type_id": _whole(p.get("pad_type_id", 0), "padding.pad_type_id"),
        "pad_token": pad_token,
        "direction": _direction(p.get("direction", "Right")),
    }


# writing -------------------------------------------------------------------------------------------
def tokenizer_json(tok: Any) -> dict:
    """A tokenizer's tokenizer.json content (Hugging Face's layout, read by `tokenizers`)."""
    trunc = None
    if tok.truncation:
        t = tok.truncation
        trunc = {
            "direction": t.get("direction", "right").capitalize(),
            "max_length": t["max_length"],
            "strategy": "".join(w.capitalize() for w in t.get("strategy", "longest_first").split("_")),
            "stride": t.get("stride", 0),
        }
    pad = None
    if tok.padding:
        p = tok.padding
        pad = {
            "strategy": {"Fixed": p["length"]} if p.get("length") else "BatchLongest",
            "direction": p.get("direction", "right").capitalize(),
            "pad_to_multiple_of": p.get("pad_to_multiple_of"),
            "pad_id": p.get("pad_id", tok.token_to_id(tok.pad_token) or 0),
            "pad_type_id": p.get("pad_type_id", 0),
            "pad_token": p.get("pad_token", tok.pad_token),
        }
    return {
        "version": "1.0",
        "truncation": trunc,
        "padding": pad,
        "added_tokens": [t.to_json() for t in sorted(tok.added_tokens, key=lambda t: t.id)],
        "normalizer": tok.normalizer.to_json() if tok.normalizer is not None else None,
        "pre_tokenizer": tok.pre_tokenizer.to_json(),
        "post_processor": tok.post_processor.to_json() if tok.post_processor is not None else None,
        "decoder": tok.decoder.to_json(),
        "model": tok.model.to_json(),
    }


def save_folder(tok: Any, folder: str | os.PathLike) -> list[Path]:
    """tokenizer.json + vocab.txt (+ merges.txt for BPE) + tokenizer_config.json in `folder`,
    each written atomically; the paths written."""
    folder = Path(folder)
    vocab = tok.get_vocab()
    unwritable = next((t for t in vocab if not _is_utf8(t)), None)
    if unwritable is not None:  # checked before anything is written
        raise BertkitError(f"token {unwritable!r} holds a lone surrogate, which UTF-8 files cannot hold; remove it")
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        atomic_write_text(folder / "tokenizer.json", json.dumps(tokenizer_json(tok), ensure_ascii=False, indent=2))
    ]
    write_vocab_txt(vocab, folder / "vocab.txt")
    written.append(folder / "vocab.txt")
    if isinstance(tok.model, BPE):
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in tok.model.merges]
        written.append(atomic_write_text(folder / "merges.txt", "\n".join(lines) + "\n"))
    config: dict[str, Any] = {"model_max_length": tok.model_max_length, "tokenizer_class": "PreTrainedTokenizerFast"}
    if tok.padding_side != "right" or tok.truncation_side != "right":
        config.update(padding_side=tok.padding_side, truncation_side=tok.truncation_side)
    if isinstance(tok.normalizer, normalizers.BertNormalizer):
        config.update(
            do_lower_case=tok.normalizer.lowercase,
            strip_accents=tok.normalizer.strip_accents,
            tokenize_chinese_chars=tok.normalizer.handle_chinese_chars,
        )
    specials = {t.content for t in tok.added_tokens if t.special}
    for name, role in ROLES.items():
        if name in specials:
            config[role] = name
    written.append(atomic_write_json(folder / "tokenizer_config.json", config))
    return written


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def folder_options(folder: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Tokenizer.from_vocab's options from a folder's tokenizer_config.json (transformers' names)
    and the caller's `overrides` (either naming)."""
    config = read_tokenizer_config(folder) | overrides
    max_len = config.get("model_max_length", 512)
    # transformers writes 1e30 for "no limit": BERT's positions stop at 512
    max_len = int(max_len) if isinstance(max_len, (int, float)) and 0 < max_len < 1e9 else 512
    for side in ("padding_side", "truncation_side"):
        if config.get(side, "right") not in ("left", "right"):
            raise BertkitError(f"{side}={config[side]!r} is not 'left' or 'right'")
    options = {
        "lowercase": config.get("do_lower_case", True),
        "strip_accents": config.get("strip_accents"),
        "tokenize_chinese_chars": config.get("tokenize_chinese_chars", True),
        "model_max_length": max_len,
        "padding_side": config.get("padding_side", "right"),
        "truncation_side": config.get("truncation_side", "right"),
    }
    return options | {k: v for k, v in overrides.items() if k not in CONFIG_TYPES}


def read_tokenizer_config(folder: Path) -> dict[str, Any]:
    """The settings of tokenizer_config.json that bertkit uses, type-checked ({} when absent)."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    config = read_json_object(path, "tokenizer_config.json")
    for key, kinds in CONFIG_TYPES.items():
        if key in config and not _has_type(config[key], kinds):
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise InputFileError(path, f"{key} is {config[key]!r}; expected {expected}")
    for key in ("padding_side", "truncation_side"):
        if config.get(key, "right") not in ("left", "right"):
            raise InputFileError(path, f"{key} is {config[key]!r}; expected 'left' or 'right'")
    return config


def _has_type(value: object, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false is a bool, never a number here
        return bool in kinds
    return isinstance(value, kinds)
