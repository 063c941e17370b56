"""Hugging Face tokenizer.json, read and written, so vocabularies move freely both ways.

Only the components bertkit implements are accepted (listed in the error when one is not); a
file we write loads in `tokenizers.Tokenizer.from_file` and encodes identically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bertkit.errors import BertkitError, InputFileError
from bertkit.tokenizers import decoders, normalizers, pre_tokenizers
from bertkit.tokenizers.added_tokens import AddedToken
from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.post_processors import ByteLevelOffsets, TemplateProcessing
from bertkit.tokenizers.wordpiece import WordPiece, write_vocab_txt


class _Bad(Exception):
    """A problem inside the JSON; turned into an InputFileError naming the file."""


def load_tokenizer_json(path: str | os.PathLike):
    from bertkit.tokenizers.tokenizer import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "tokenizer file not found; pass a Hugging Face tokenizer.json")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(path, "not UTF-8 text; a tokenizer.json is UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        raise InputFileError(
            path, f"malformed JSON ({err.msg}, column {err.colno}); re-save the file", err.lineno
        ) from None
    try:
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise _Bad("no 'model' object; this is not a tokenizer.json")
        model = _model(data["model"])
        added = [AddedToken.from_json(t) for t in data.get("added_tokens") or []]
        tok = Tokenizer(
            model,
            normalizer=_normalizer(data.get("normalizer")),
            pre_tokenizer=_pre_tokenizer(data.get("pre_tokenizer")),
            post_processor=_post_processor(data.get("post_processor"), model, added),
            decoder=_decoder(data.get("decoder")),
            added_tokens=added,
            truncation=_truncation(data.get("truncation")),
            padding=_padding(data.get("padding")),
        )
        pad = (data.get("padding") or {}).get("pad_token")
        if pad:
            tok.pad_token = pad
        return tok
    except _Bad as err:
        raise InputFileError(path, str(err)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputFileError(
            path, f"malformed tokenizer.json ({type(err).__name__}: {err}); re-save it with Hugging Face or bertkit"
        ) from None


def _model(m: dict):
    kind = m.get("type") or ("BPE" if "merges" in m else "WordPiece" if "continuing_subword_prefix" in m else None)
    vocab = m.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise _Bad("model.vocab is missing or empty")
    vocab = {str(k): int(v) for k, v in vocab.items()}
    if kind == "WordPiece":
        unk = m.get("unk_token", "[UNK]")
        if unk not in vocab:
            raise _Bad(f"the WordPiece vocabulary has no unknown token {unk!r}")
        return WordPiece(
            vocab,
            unk_token=unk,
            continuing_subword_prefix=m.get("continuing_subword_prefix") or "##",
            max_input_chars_per_word=int(m.get("max_input_chars_per_word", 100)),
        )
    if kind == "BPE":
        if m.get("byte_fallback"):
            raise _Bad("BPE byte_fallback is not supported; use a byte-level BPE instead")
        merges = []
        for item in m.get("merges") or []:
            pair = item.split(" ") if isinstance(item, str) else list(item)
            if len(pair) != 2:
                raise _Bad(f"merge {item!r} is not a pair of tokens")
            merges.append((pair[0], pair[1]))
        try:
            return BPE(
                vocab,
                merges,
                unk_token=m.get("unk_token"),
                continuing_subword_prefix=m.get("continuing_subword_prefix"),
                end_of_word_suffix=m.get("end_of_word_suffix"),
                fuse_unk=bool(m.get("fuse_unk", False)),
                ignore_merges=bool(m.get("ignore_merges", False)),
            )
        except BertkitError as err:
            raise _Bad(str(err)) from None
    raise _Bad(f"model type {kind!r} is not supported (supported: WordPiece, BPE)")


def _normalizer(n):
    if n is None:
        return None
    kind = n.get("type")
    if kind == "BertNormalizer":
        return normalizers.BertNormalizer(
            clean_text=n.get("clean_text", True),
            handle_chinese_chars=n.get("handle_chinese_chars", True),
            strip_accents=n.get("strip_accents"),
            lowercase=n.get("lowercase", True),
        )
    simple = {"Lowercase": normalizers.Lowercase, "NFD": normalizers.NFD, "StripAccents": normalizers.StripAccents}
    if kind in simple:
        return simple[kind]()
    if kind == "Sequence":
        return normalizers.Sequence([_normalizer(x) for x in n.get("normalizers", [])])
    raise _Bad(
        f"normalizer type {kind!r} is not supported (supported: BertNormalizer, Lowercase, NFD, StripAccents, Sequence)"
    )


def _pre_tokenizer(p):
    if p is None:
        return pre_tokenizers.NoSplit()
    kind = p.get("type")
    if kind == "BertPreTokenizer":
        return pre_tokenizers.BertPreTokenizer()
    if kind == "ByteLevel":
        return pre_tokenizers.ByteLevel(
            add_prefix_space=p.get("add_prefix_space", True),
            use_regex=p.get("use_regex", True),
            trim_offsets=p.get("trim_offsets", True),
        )
    if kind == "Whitespace":
        return pre_tokenizers.Whitespace()
    if kind == "WhitespaceSplit":
        return pre_tokenizers.WhitespaceSplit()
    raise _Bad(
        f"pre_tokenizer type {kind!r} is not supported (supported: "
        "BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit)"
    )


def _post_processor(p, model, added: list[AddedToken]):
    if p is None:
        return None
    kind = p.get("type")
    ids = dict(model.vocab)
    ids.update({t.content: t.id for t in added})

    def token_id(name: str) -> int:
        if name not in ids:
            raise _Bad(f"post_processor uses {name!r}, which is not in the vocabulary")
        return ids[name]

    if kind == "TemplateProcessing":

        def pieces(template):
            out = []
            for item in template:
                if "Sequence" in item:
                    out.append((item["Sequence"]["id"], int(item["Sequence"].get("type_id", 0))))
                else:
                    out.append((item["SpecialToken"]["id"], int(item["SpecialToken"].get("type_id", 0))))
            return out

        specials = {name: [int(i) for i in spec["ids"]] for name, spec in (p.get("special_tokens") or {}).items()}
        try:
            return TemplateProcessing(pieces(p["single"]), pieces(p["pair"]), specials)
        except BertkitError as err:
            raise _Bad(str(err)) from None
    if kind == "BertProcessing":
        (sep, sep_id), (cls_, cls_id) = p["sep"], p["cls"]
        return TemplateProcessing.bert(cls_, int(cls_id), sep, int(sep_id))
    if kind == "RobertaProcessing":
        (sep, sep_id), (cls_, cls_id) = p["sep"], p["cls"]
        template = TemplateProcessing(
            [(cls_, 0), ("A", 0), (sep, 0)],
            [(cls_, 0), ("A", 0), (sep, 0), (sep, 0), ("B", 0), (sep, 0)],
            {cls_: [int(cls_id)], sep: [int(sep_id)]},
        )
        return ByteLevelOffsets(p.get("trim_offsets", True), p.get("add_prefix_space", True), template)
    if kind == "ByteLevel":
        return ByteLevelOffsets(p.get("trim_offsets", True), p.get("add_prefix_space", True))
    raise _Bad(
        f"post_processor type {kind!r} is not supported (supported: "
        "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel)"
    )


def _decoder(d):
    if d is None:
        return decoders.Decoder()
    kind = d.get("type")
    if kind == "WordPiece":
        return decoders.WordPieceDecoder(d.get("prefix", "##"), d.get("cleanup", True))
    if kind == "BPEDecoder":
        return decoders.BPEDecoder(d.get("suffix", "</w>"))
    if kind == "ByteLevel":
        return decoders.ByteLevelDecoder()
    raise _Bad(f"decoder type {kind!r} is not supported (supported: WordPiece, BPEDecoder, ByteLevel)")


def _truncation(t):
    if not t:
        return None
    strategy = {"LongestFirst": "longest_first", "OnlyFirst": "only_first", "OnlySecond": "only_second"}[
        t.get("strategy", "LongestFirst")
    ]
    return {
        "max_length": int(t["max_length"]),
        "strategy": strategy,
        "stride": int(t.get("stride", 0)),
        "direction": str(t.get("direction", "Right")).lower(),
    }


def _padding(p):
    if not p:
        return None
    strategy = p.get("strategy", "BatchLongest")
    length = int(strategy["Fixed"]) if isinstance(strategy, dict) else None
    return {
        "length": length,
        "pad_to_multiple_of": p.get("pad_to_multiple_of"),
        "pad_id": int(p.get("pad_id", 0)),
        "pad_type_id": int(p.get("pad_type_id", 0)),
        "pad_token": p.get("pad_token", "[PAD]"),
        "direction": str(p.get("direction", "Right")).lower(),
    }


# writing -------------------------------------------------------------------------------------------
def tokenizer_to_json(tok) -> dict:
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


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_folder(tok, folder: str | os.PathLike) -> Path:
    """tokenizer.json + vocab.txt (+ merges.txt for BPE) + tokenizer_config.json in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "tokenizer.json", json.dumps(tokenizer_to_json(tok), ensure_ascii=False, indent=2))
    write_vocab_txt(tok.get_vocab(), folder / "vocab.txt")
    if isinstance(tok.model, BPE):
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in tok.model.merges]
        (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"model_max_length": tok.model_max_length, "tokenizer_class": "PreTrainedTokenizerFast"}
    if isinstance(tok.normalizer, normalizers.BertNormalizer):
        config.update(
            do_lower_case=tok.normalizer.lowercase,
            strip_accents=tok.normalizer.strip_accents,
            tokenize_chinese_chars=tok.normalizer.handle_chinese_chars,
        )
    specials = {t.content for t in tok.added_tokens if t.special}
    for role, name in (
        ("unk_token", "[UNK]"),
        ("sep_token", "[SEP]"),
        ("pad_token", "[PAD]"),
        ("cls_token", "[CLS]"),
        ("mask_token", "[MASK]"),
    ):
        if name in specials:
            config[role] = name
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2))
    return folder
