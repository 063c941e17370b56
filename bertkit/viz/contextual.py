"""Context-dependent word vectors: the same word, different sentences, different vectors.

The seed's first "feature of BERT": Word2Vec gives "Python" in "He got bit by Python" and in
"Python is my favorite programming language" one vector; BERT gives two. Here we measure it:
the static input embeddings of the word (rows of the token-embedding table) are identical, while
its vectors after each encoder layer drift apart. A word split into pieces (pre ##train ##ing)
is represented by the mean of its pieces' vectors.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.errors import BertkitError
from bertkit.inference.vectors import token_embeddings


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
    def between(cls, vectors: WordVectors, i: int = 0, j: int = 1) -> WordSimilarity:
        """Compare the word in sentences i and j of `vectors`."""
        layers = vectors.layers
        per_layer = [cosine(layers[i, k], layers[j, k]) for k in range(layers.shape[1])]
        return cls(
            word=vectors.word,
            contextual=per_layer[-1],
            static=cosine(vectors.static[i], vectors.static[j]),
            per_layer=per_layer,
        )

    def report(self) -> str:
        rows = [
            f"cosine similarity of {self.word!r} in the two sentences:",
            f"  static input embedding (token table): {self.static:.4f}",
            f"  contextual vector (last layer):      {self.contextual:.4f}",
            "  through the layers: "
            + "  ".join(f"{'emb' if i == 0 else f'L{i}'}={c:.3f}" for i, c in enumerate(self.per_layer)),
        ]
        return "\n".join(rows)


def find_word(embeddings: Any, word: str) -> int:
    """Index in `embeddings.words` (a bertkit.inference.TokenEmbeddings) of the first `word`,
    case-insensitive; a BertkitError listing the sentence's words when it is not there."""
    wanted = word.strip().casefold()
    for k, surface in enumerate(embeddings.words):
        if surface.casefold() == wanted:
            return k
    listing = ", ".join(dict.fromkeys(embeddings.words))
    raise BertkitError(f"word {word!r} is not in the sentence {embeddings.text!r}; its words are: {listing}")


def word_vectors(model: Any, tokenizer: Any, sentences: Sequence[str], word: str, dtype: Any = None) -> WordVectors:
    """`word`'s static and per-layer vectors in each sentence (per-word pooling: bertkit.inference).

    dtype: the arithmetic of the forward pass, as in bertkit.embed (the static table stays exact).
    """
    if not sentences:
        raise BertkitError("give at least one sentence")
    sentences = list(sentences)
    limit = int(model.config.max_position_embeddings)
    for text in sentences:
        n = len(tokenizer.encode(text).ids)
        if n > limit:
            warnings.warn(
                f"the sentence {textwrap.shorten(text, 40)!r} has {n} tokens but the model takes at "
                f"most {limit}; only the first {limit} are used",
                stacklevel=2,
            )
    depth = int(model.config.num_hidden_layers) + 1  # the embedding output and each layer's output
    per_text = token_embeddings(
        sentences, model=model, tokenizer=tokenizer, layers=list(range(depth)), max_seq_len=limit, dtype=dtype
    )
    table = model.embeddings.word_embeddings.weight.detach().float().cpu()  # [V, H]
    statics, layers, pieces = [], [], []
    for text, emb in zip(sentences, per_text):
        if (
            word.casefold() not in [w.casefold() for w in emb.words]
            and word.casefold() in text.casefold()
            and len(tokenizer.encode(text).ids) > limit
        ):
            raise BertkitError(
                f"{word!r} lies past the model's maximum of {limit} tokens in "
                f"{textwrap.shorten(text, 40)!r}; shorten the sentence"
            )
        k = find_word(emb, word)
        start, end = emb.word_offsets[k]
        positions = [t for t, (s, e) in enumerate(emb.offsets) if start <= s < e <= end]  # skips specials (0, 0)
        word_pieces = [emb.tokens[t] for t in positions]
        ids = [tokenizer.token_to_id(p) for p in word_pieces]
        layers.append(emb.word_vectors[k].view(depth, -1).float().numpy())  # [(L + 1) * H] -> [L + 1, H]
        statics.append(table[ids].mean(0).float().numpy())  # [H]
        pieces.append(word_pieces)
    return WordVectors(word=word, sentences=sentences, pieces=pieces, static=np.stack(statics), layers=np.stack(layers))


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
