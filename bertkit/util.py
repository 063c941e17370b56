"""Similarity and semantic search over sentence vectors, with sentence_transformers.util's signatures.

    from bertkit.util import cos_sim, semantic_search
    scores = cos_sim(queries, corpus)                   # [Q, N]
    hits = semantic_search(queries, corpus, top_k=5)    # per query: [{"corpus_id", "score"}, ...] best first

Inputs may be torch tensors, numpy arrays or lists, one vector [H] or a batch [N, H]; results
are float32 tensors. `similarity_function(name)` maps a folder's `similarity_fn_name` ("cosine",
"dot", "euclidean", "manhattan") to its function.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bertkit.errors import BertkitError

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _batch(x: Any) -> torch.Tensor:
    """A [N, H] float tensor from a tensor, an array or a list (one vector becomes [1, H])."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise BertkitError(f"expected vectors of numbers, got dtype {t.dtype}")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise BertkitError(f"expected one vector [H] or a batch [N, H], got shape {list(t.shape)}")
    return t if t.is_floating_point() else t.float()


def normalize_embeddings(embeddings: Any) -> torch.Tensor:
    """Each row scaled to unit length (zero rows stay zero)."""
    return F.normalize(_batch(embeddings), p=2, dim=1)


def cos_sim(a: Any, b: Any) -> torch.Tensor:
    """[len(a), len(b)] cosine similarities: res[i][j] = cos(a[i], b[j])."""
    a, b = _same_width(a, b)
    return normalize_embeddings(a) @ normalize_embeddings(b).T


def dot_score(a: Any, b: Any) -> torch.Tensor:
    """[len(a), len(b)] dot products."""
    a, b = _same_width(a, b)
    return a @ b.T


def euclidean_sim(a: Any, b: Any) -> torch.Tensor:
    """[len(a), len(b)] negative Euclidean distances (larger is more similar)."""
    a, b = _same_width(a, b)
    return -torch.cdist(a, b, p=2.0)


def manhattan_sim(a: Any, b: Any) -> torch.Tensor:
    """[len(a), len(b)] negative Manhattan distances (larger is more similar)."""
    a, b = _same_width(a, b)
    return -torch.cdist(a, b, p=1.0)


def pairwise_cos_sim(a: Any, b: Any) -> torch.Tensor:
    """[N] cosine similarities of matching rows: res[i] = cos(a[i], b[i])."""
    a, b = _same_width(a, b)
    if len(a) != len(b):
        raise BertkitError(f"pairwise_cos_sim: {len(a)} rows vs {len(b)} rows; give as many of each")
    return (normalize_embeddings(a) * normalize_embeddings(b)).sum(-1)


SIMILARITY: dict[str, Score] = {
    "cosine": cos_sim,
    "dot": dot_score,
    "euclidean": euclidean_sim,
    "manhattan": manhattan_sim,
}


def similarity_function(name: str) -> Score:
    """The function for a `similarity_fn_name` (config_sentence_transformers.json)."""
    if name not in SIMILARITY:
        raise BertkitError(f"similarity {name!r} is not one of {', '.join(SIMILARITY)}")
    return SIMILARITY[name]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Score = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """For each query, the top_k corpus entries as {"corpus_id", "score"}, best first.

    The corpus is scanned in chunks of corpus_chunk_size rows and the queries in chunks of
    query_chunk_size, so memory stays bounded; a running heap per query keeps the best top_k.
    """
    queries, corpus = _batch(query_embeddings), _batch(corpus_embeddings)
    if top_k < 1 or query_chunk_size < 1 or corpus_chunk_size < 1:
        raise BertkitError("semantic_search: top_k and the chunk sizes must be >= 1")
    queries = queries.to(corpus.device)
    best: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    for c in range(0, len(corpus), corpus_chunk_size):
        chunk = corpus[c : c + corpus_chunk_size]
        for q in range(0, len(queries), query_chunk_size):
            scores = score_function(queries[q : q + query_chunk_size], chunk)  # [q chunk, c chunk]
            values, indices = scores.topk(min(top_k, scores.shape[1]), dim=1, largest=True, sorted=False)
            for row, (vals, ids) in enumerate(zip(values.tolist(), (indices + c).tolist())):
                heap = best[q + row]
                for score, corpus_id in zip(vals, ids):
                    if len(heap) < top_k:
                        heapq.heappush(heap, (score, corpus_id))
                    elif score > heap[0][0]:
                        heapq.heapreplace(heap, (score, corpus_id))
    return [[{"corpus_id": i, "score": s} for s, i in sorted(heap, key=lambda h: (-h[0], h[1]))] for heap in best]


def _same_width(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _batch(a), _batch(b)
    if a.shape[1] != b.shape[1]:
        raise BertkitError(f"vectors of different widths: {a.shape[1]} vs {b.shape[1]} (same model for both?)")
    if a.dtype != b.dtype:
        a, b = a.float(), b.float()
    return a, b.to(a.device)
