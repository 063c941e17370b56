"""WordPiece: split a word into the longest vocabulary pieces, left to right (BERT's tokenizer).

"pretraining" -> "pre", "##train", "##ing": take the longest prefix that is in the vocabulary,
then the longest "##"-prefixed piece of the rest, and so on. A word with any part that cannot be
matched, or longer than `max_input_chars_per_word`, becomes a single [UNK].
"""

from __future__ import annotations

import os
from pathlib import Path

from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write_text
from bertkit.tokenizers.models import Model, Pieces


class WordPiece(Model):
    def __init__(
        self,
        vocab: dict[str, int],
        unk_token: str = "[UNK]",
        continuing_subword_prefix: str = "##",
        max_input_chars_per_word: int = 100,
    ) -> None:
        super().__init__(vocab, unk_token)
        if isinstance(max_input_chars_per_word, bool) or not isinstance(max_input_chars_per_word, int):
            raise BertkitError(f"max_input_chars_per_word must be a whole number, got {max_input_chars_per_word!r}")
        if not isinstance(continuing_subword_prefix, str):
            raise BertkitError(f"continuing_subword_prefix must be a string, got {continuing_subword_prefix!r}")
        self.prefix = continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        n = len(self.prefix)
        # the longest piece, so the search for the longest match starts at a useful length
        self._max_piece = max(
            (len(t) - n if n and t.startswith(self.prefix) else len(t) for t in self.vocab), default=1
        )

    def tokenize_word(self, word: str) -> Pieces:
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [(self._unk(word), 0, n)]
        vocab, prefix, longest = self.vocab, self.prefix, self._max_piece
        pieces: Pieces = []
        start = 0
        while start < n:
            end = min(n, start + longest)
            while end > start:
                piece = word[start:end] if start == 0 else prefix + word[start:end]
                idx = vocab.get(piece)
                if idx is not None:
                    pieces.append((idx, start, end))
                    break
                end -= 1
            else:  # nothing matched at `start`: the whole word is unknown
                return [(self._unk(word), 0, n)]
            start = end
        return pieces

    def to_json(self) -> dict:
        return {
            "type": "WordPiece",
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
        }

    @classmethod
    def from_json(cls, data: dict) -> WordPiece:
        """The "model" object of a tokenizer.json whose type is WordPiece."""
        vocab = data.get("vocab")
        if not isinstance(vocab, dict) or not vocab:
            raise BertkitError("model.vocab is missing or empty")
        unk = data.get("unk_token", "[UNK]")
        if not isinstance(unk, str) or unk not in vocab:
            raise BertkitError(f"the WordPiece vocabulary has no unknown token {unk!r}")
        return cls(
            vocab,
            unk_token=unk,
            continuing_subword_prefix=data.get("continuing_subword_prefix") or "##",
            max_input_chars_per_word=data.get("max_input_chars_per_word", 100),
        )

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, unk_token: str = "[UNK]", **kwargs) -> WordPiece:
        vocab = read_vocab_txt(path)
        if unk_token not in vocab:
            raise InputFileError(
                path,
                f"the vocabulary has no {unk_token!r} entry; add a "
                f"line {unk_token} (BERT's vocab.txt has it at id 100)",
            )
        return cls(vocab, unk_token=unk_token, **kwargs)


def read_vocab_txt(path: str | os.PathLike) -> dict[str, int]:
    """vocab.txt (one token per line, id = line number) -> {token: id}, refusing broken files."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "vocabulary file not found; pass the vocab.txt of a BERT checkpoint")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputFileError(path, "not UTF-8 text; save the vocabulary as UTF-8", line) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputFileError(path, "the vocabulary is empty; expected one token per line")
    vocab: dict[str, int] = {}
    for i, raw in enumerate(lines):
        token = raw.rstrip()  # as Hugging Face: trailing whitespace (and \r) is not part of the token
        if token in vocab:
            raise InputFileError(
                path,
                f"duplicate entry {token!r} (first on line {vocab[token] + 1}); each token must appear once",
                i + 1,
            )
        vocab[token] = i
    return vocab


def write_vocab_txt(vocab: dict[str, int], path: str | os.PathLike) -> None:
    """One token per line in id order, written atomically (a reader never sees half a file)."""
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    atomic_write_text(path, "".join(t + "\n" for t in tokens))
