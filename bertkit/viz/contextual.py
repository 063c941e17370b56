"""Context-dependent word vectors: the same word, different sentences, different vectors.

The seed's first "feature of BERT": Word2Vec gives "Python" in "He got bit by Python" and in
"Python is my favorite programming language" one vector; BERT gives two. Here we measure it:
the static input embeddings of the word (rows of the token-embedding table) are identical, while
its vectors after each encoder layer drift apart. A word split into pieces (pre ##train ##ing)
is represented by the mean of its pieces' vectors.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bertkit.errors import BertkitError


@dataclass(frozen=True)
class WordVectors:
    """One word's vectors in several sentences."""

    word: str
    sentences: list[str]
    pieces: list[list[str]]  # the word's word pieces in each sentence, e.g. [["python"], ["python"]]
    static: np.ndarray  # [N, H]: mean of the pieces' rows of the token-embedding table
    layers: np.ndarray  # [N, L + 1, H]: index 0 = embedding output, index l = after encoder layer l

    @property
    def contextual(self) -> np.ndarray:
        """[N, H]: the vectors after the last layer, the ones BERT hands to a task."""
        return self.layers[:, -1]


@dataclass(frozen=True)
class WordSimilarity:
    word: str
    contextual: float  # cosine after the last layer
    static: float  # cosine of the static input embeddings: 1.0 for the same pieces
    per_layer: list[float]  # cosine at the embedding output (0) and after each layer (1..L)

    @classmethod
    def between(cls, vectors: WordVectors, i: int = 0, j: int = 1) -> "WordSimilarity":
        """Compare the word in sentences i and j of `vectors`."""
        layers = vectors.layers
        per_layer = [cosine(layers[i, k], layers[j, k]) for k in range(layers.shape[1])]
        return cls(word=vectors.word, contextual=per_layer[-1],
                   static=cosine(vectors.static[i], vectors.static[j]), per_layer=per_layer)

    def report(self) -> str:
        rows = [f"cosine similarity of {self.word!r} in the two sentences:",
                f"  static input embedding (token table): {self.static:.4f}",
                f"  contextual vector (last layer):      {self.contextual:.4f}",
                "  through the layers: " + "  ".join(
                    f"{'emb' if i == 0 else f'L{i}'}={c:.3f}" for i, c in enumerate(self.per_layer))]
        return "\n".join(rows)


def sentence_words(encoding: Any, text: str) -> list[tuple[str, list[int]]]:
    """The words of `text` as its encoding splits them: [(surface text, token positions), ...]."""
    words: dict[int, list[int]] = {}
    for position, word_id in enumerate(encoding.word_ids):
        if word_id is not None:
            words.setdefault(word_id, []).append(position)
    out = []
    for positions in words.values():
        start, end = encoding.offsets[positions[0]][0], encoding.offsets[positions[-1]][1]
        out.append((text[start:end], positions))
    return out


def find_word(encoding: Any, text: str, word: str) -> list[int]:
    """Token positions of the first occurrence of `word` in `text` (case-insensitive).

    Raises a BertkitError listing the sentence's words when it is not there.
    """
    words = sentence_words(encoding, text)
    wanted = word.strip().casefold()
    for surface, positions in words:
        joined = "".join(encoding.tokens[p].removeprefix("##") for p in positions)
        if surface.casefold() == wanted or joined.casefold() == wanted:
            return positions
    listing = ", ".join(dict.fromkeys(surface for surface, _ in words))
    raise BertkitError(f"word {word!r} is not in the sentence {text!r}; its words are: {listing}")


def word_vectors(model: Any, tokenizer: Any, sentences: Sequence[str], word: str) -> WordVectors:
    """Run each sentence through `model` and collect `word`'s static and per-layer vectors."""
    import torch

    from bertkit.viz.attention import fit_to_model

    if not sentences:
        raise BertkitError("give at least one sentence")
    table = model.embeddings.word_embeddings.weight.detach()  # [V, H]
    limit = int(model.config.max_position_embeddings)
    statics, layers, pieces = [], [], []
    model.eval()
    for text in sentences:
        encoding = tokenizer.encode(text)
        positions = find_word(encoding, text, word)
        if positions[-1] >= limit - 1:
            raise BertkitError(
                f"{word!r} sits at token {positions[-1]} of {textwrap.shorten(text, 50)!r}, past the "
                f"model's maximum of {limit} tokens; shorten the sentence"
            )
        ids, type_ids, _ = fit_to_model(encoding, limit)
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            out = model(input_ids, attention_mask=torch.ones_like(input_ids),
                        token_type_ids=torch.tensor([type_ids]), output_hidden_states=True)
        hidden = torch.stack([h[0] for h in out.hidden_states])  # [L + 1, T, H]
        layers.append(hidden[:, positions].mean(1).float().numpy())  # [L + 1, H]
        statics.append(table[[ids[p] for p in positions]].mean(0).float().numpy())  # [H]
        pieces.append([encoding.tokens[p] for p in positions])
    return WordVectors(word=word, sentences=list(sentences), pieces=pieces,
                       static=np.stack(statics), layers=np.stack(layers))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """[N, H] -> [N, N] pairwise cosines."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    return x @ x.T


def word_similarity(model: Any, tokenizer: Any, first: str, second: str, word: str) -> WordSimilarity:
    """How alike `word` is in two sentences: static embeddings vs the contextual vectors."""
    return WordSimilarity.between(word_vectors(model, tokenizer, [first, second], word))
