"""A 2-D map of one word's contextual vectors across sentences (PCA), as a PNG.

The seed's point: "bank" by a river and "bank" the lender enter BERT as the same vector, and
leave it as different ones. Projecting the output vectors onto their two main directions of
variation shows the senses as separate groups of points.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.errors import BertkitError
from bertkit.viz.attention_png import save_png


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, H] -> ([N, 2] coordinates on the two main axes, [2] share of variance each explains).

    Plain SVD of the centred vectors; with fewer than three points the second axis is zero.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise BertkitError(f"need at least 2 vectors of shape [N, H] for a map, got shape {list(x.shape)}")
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # x = u diag(s) vt
    k = min(2, len(s))
    coords = np.zeros((len(x), 2))
    coords[:, :k] = u[:, :k] * s[:k]  # [N, 2]: projections onto the first two right singular vectors
    total = float((s**2).sum()) or 1.0
    explained = np.zeros(2)
    explained[:k] = s[:k] ** 2 / total
    return coords, explained


def embedding_map(
    vectors: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    word: str = "",
    groups: Sequence[str] | None = None,
) -> Path:
    """Scatter the PCA map of `vectors` ([N, H], one per sentence) labelled with `labels`.

    `groups` (optional, one per vector) colours points by, e.g., the sense of the word.
    """
    return save_png(embedding_figure(vectors, labels, word=word, groups=groups), path)


def embedding_figure(
    vectors: np.ndarray, labels: Sequence[str], *, word: str = "", groups: Sequence[str] | None = None
) -> Any:
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only plots need it

    if len(labels) != len(vectors):
        raise BertkitError(f"got {len(labels)} labels for {len(vectors)} vectors")
    coords, explained = pca_2d(vectors)
    fig = Figure(figsize=(8.0, 6.0), dpi=100)
    ax = fig.add_axes((0.1, 0.1, 0.85, 0.8))
    names = list(groups) if groups is not None else ["" for _ in labels]
    palette = ["#1f4e9c", "#b3541e", "#2a7f3f", "#7b3294", "#a6761d", "#555555"]
    for k, name in enumerate(dict.fromkeys(names)):
        idx = [i for i, g in enumerate(names) if g == name]
        ax.scatter(coords[idx, 0], coords[idx, 1], s=60, color=palette[k % len(palette)], label=name or None, zorder=3)
    middle = float(np.median(coords[:, 0]))
    for (x, y), label in zip(coords, labels):
        right = x > middle  # write labels inwards, so they stay inside the axes
        ax.annotate(
            textwrap.shorten(label, 40),
            (x, y),
            xytext=(-6 if right else 6, 4),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
        )
    ax.axhline(0, color="#ddd", zorder=1)
    ax.axvline(0, color="#ddd", zorder=1)
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of the variance)")
    ax.set_title(f"contextual vectors of {word!r} across sentences (PCA)" if word else "contextual vectors (PCA)")
    if groups is not None:
        ax.legend(fontsize=8)
    ax.margins(0.25)
    return fig
