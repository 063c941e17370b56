"""Decoders: tokens -> text, undoing each model's way of marking word pieces.

WordPiece glues "##" pieces to the previous token and puts spaces between words; BPE with an
end-of-word suffix turns "</w>" into a space; byte-level maps its byte alphabet back to UTF-8.
Without a decoder, tokens are joined with spaces (as in Hugging Face).
"""

from __future__ import annotations

from bertkit.errors import BertkitError
from bertkit.tokenizers.bytelevel import bytes_to_text

_CLEANUPS = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]


def cleanup(text: str) -> str:
    """Remove the spaces BERT's tokenization put before punctuation and contractions."""
    for dirty, clean in _CLEANUPS:
        text = text.replace(dirty, clean)
    return text


class Decoder:
    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def to_json(self) -> dict | None:
        return None


class WordPieceDecoder(Decoder):
    def __init__(self, prefix: str = "##", cleanup: bool = True) -> None:
        self.prefix = prefix
        self.cleanup = cleanup

    def decode(self, tokens: list[str]) -> str:
        out = []
        for i, token in enumerate(tokens):
            if i:
                token = token[len(self.prefix) :] if token.startswith(self.prefix) else " " + token
            out.append(cleanup(token) if self.cleanup else token)
        return "".join(out)

    def to_json(self) -> dict:
        return {"type": "WordPiece", "prefix": self.prefix, "cleanup": self.cleanup}


class BPEDecoder(Decoder):
    def __init__(self, suffix: str = "</w>") -> None:
        self.suffix = suffix

    def decode(self, tokens: list[str]) -> str:
        last = len(tokens) - 1
        return "".join(t.replace(self.suffix, "" if i == last else " ") for i, t in enumerate(tokens))

    def to_json(self) -> dict:
        return {"type": "BPEDecoder", "suffix": self.suffix}


class ByteLevelDecoder(Decoder):
    def decode(self, tokens: list[str]) -> str:
        return bytes_to_text("".join(tokens))

    def to_json(self) -> dict:
        return {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}


def from_json(d: object) -> Decoder:
    """The "decoder" object of a tokenizer.json (null: tokens joined with spaces)."""
    if d is None:
        return Decoder()
    if not isinstance(d, dict):
        raise BertkitError(f"decoder must be an object or null, got {type(d).__name__}")
    kind = d.get("type")
    if kind == "WordPiece":
        prefix = d.get("prefix", "##")
        if not isinstance(prefix, str):
            raise BertkitError(f"decoder.prefix must be a string, got {prefix!r}")
        return WordPieceDecoder(prefix, bool(d.get("cleanup", True)))
    if kind == "BPEDecoder":
        suffix = d.get("suffix", "</w>")
        if not isinstance(suffix, str):
            raise BertkitError(f"decoder.suffix must be a string, got {suffix!r}")
        return BPEDecoder(suffix)
    if kind == "ByteLevel":
        return ByteLevelDecoder()
    raise BertkitError(f"decoder type {kind!r} is not supported (supported: WordPiece, BPEDecoder, ByteLevel)")
