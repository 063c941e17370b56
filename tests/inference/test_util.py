"""bertkit.util: the same numbers and the same search results as sentence_transformers.util."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peers import peer

from bertkit.errors import BertkitError
from bertkit.util import (
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_cos_sim,
    semantic_search,
    similarity_function,
)

ATOL, RTOL = 1e-5, 1e-5  # float32 matmuls of width 32: |ours - theirs| <= ATOL + RTOL * |theirs|


@pytest.fixture(scope="module")
def vectors():
    g = torch.Generator().manual_seed(0)
    return torch.randn(7, 32, generator=g), torch.randn(50, 32, generator=g)


@pytest.mark.parametrize("name", ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"])
def test_scores_equal_the_peer(vectors, name):
    util = peer("sentence_transformers.util")
    ours = {"cos_sim": cos_sim, "dot_score": dot_score, "euclidean_sim": euclidean_sim, "manhattan_sim": manhattan_sim}
    q, c = vectors
    theirs = getattr(util, name)(q, c)
    torch.testing.assert_close(ours[name](q, c), theirs, atol=ATOL, rtol=RTOL)
    # numpy arrays, lists and single vectors are accepted too
    torch.testing.assert_close(ours[name](q[0].numpy(), c.tolist()), theirs[:1], atol=ATOL, rtol=RTOL)


def test_pairwise_and_names(vectors):
    q, c = vectors
    torch.testing.assert_close(
        pairwise_cos_sim(q, c[:7]), peer("sentence_transformers.util").pairwise_cos_sim(q, c[:7])
    )
    assert similarity_function("cosine") is cos_sim and similarity_function("dot") is dot_score
    with pytest.raises(BertkitError, match="similarity 'jaccard' is not one of"):
        similarity_function("jaccard")
    with pytest.raises(BertkitError, match="different widths: 32 vs 16"):
        cos_sim(q, c[:, :16])
    with pytest.raises(BertkitError, match="one vector"):
        cos_sim(torch.zeros(2, 3, 4), q)


@pytest.mark.parametrize("chunks", [(100, 500000), (3, 7)])
def test_semantic_search_equals_the_peer(vectors, chunks):
    util = peer("sentence_transformers.util")
    q, c = vectors
    for top_k in (1, 5, 80):
        for fn in (cos_sim, dot_score):
            theirs = util.semantic_search(
                q,
                c,
                query_chunk_size=chunks[0],
                corpus_chunk_size=chunks[1],
                top_k=top_k,
                score_function=getattr(util, fn.__name__),
            )
            ours = semantic_search(
                q, c, query_chunk_size=chunks[0], corpus_chunk_size=chunks[1], top_k=top_k, score_function=fn
            )
            assert len(ours) == len(q)
            for a, b in zip(ours, theirs):
                assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
                np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=ATOL, rtol=RTOL)
    assert len(semantic_search(q[0], c, top_k=3)) == 1  # one query vector
    with pytest.raises(BertkitError, match="top_k"):
        semantic_search(q, c, top_k=0)
