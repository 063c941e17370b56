"""Word-level tokenization: every word is a token, and a word missing from the vocabulary is [UNK].

The lecture's motivation for subwords. With the vocabulary [game, the, I, played, walked, enjoy],
"I played the game" -> [I, played, the, game], but "I enjoyed the game" -> [I, <UNK>, the, game]:
"enjoyed" was never seen, and growing the vocabulary until every word is in it costs memory and
still leaves unknown words. WordPiece and BPE split the unknown word into known pieces instead.
"""

from __future__ import annotations

from bertkit.errors import BertkitError
from bertkit.tokenizers.models import Model, Pieces


class WordLevel(Model):
    def __init__(self, vocab: dict[str, int], unk_token: str = "[UNK]") -> None:
        if unk_token is None:
            raise BertkitError("a word-level model needs an unknown token for the words it has not seen")
        super().__init__(vocab, unk_token)

    def tokenize_word(self, word: str) -> Pieces:
        idx = self.vocab.get(word)
        return [(idx if idx is not None else self._unk(word), 0, len(word))]

    @classmethod
    def from_json(cls, data: dict) -> WordLevel:
        """The "model" object of a tokenizer.json whose type is WordLevel."""
        vocab = data.get("vocab")
        if not isinstance(vocab, dict) or not vocab:
            raise BertkitError("model.vocab is missing or empty")
        unk = data.get("unk_token", "[UNK]")
        if not isinstance(unk, str) or unk not in vocab:
            raise BertkitError(f"the WordLevel vocabulary has no unknown token {unk!r}")
        return cls(vocab, unk_token=unk)

    def to_json(self) -> dict:
        return {
            "type": "WordLevel",
            "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
            "unk_token": self.unk_token,
        }
