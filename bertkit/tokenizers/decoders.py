"""Decoders: tokens -> text, undoing each model's way of marking word pieces.

WordPiece glues "##" pieces to the previous token and puts spaces between words; BPE with an
end-of-word suffix turns "</w>" into a space; byte-level maps its byte alphabet back to UTF-8.
Without a decoder, tokens are joined with spaces (as in Hugging Face).
"""

from __future__ import annotations

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
