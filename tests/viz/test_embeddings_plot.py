"""The PCA map: the plotted points are the vectors' projections on their two main axes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from bertkit.errors import BertkitError
from bertkit.viz import embedding_figure, embedding_map, pca_2d


def _two_senses(seed: int = 0) -> np.ndarray:
    """Six 32-d vectors in two tight clusters far apart (two senses of one word)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=32)
    offset = rng.normal(size=32) * 3
    return np.stack([centre + offset * (1 if k < 3 else -1) + rng.normal(scale=0.1, size=32) for k in range(6)])


def test_pca_matches_the_covariance_eigenvectors():
    x = _two_senses()
    coords, explained = pca_2d(x)
    centred = x - x.mean(0)
    values, vectors = np.linalg.eigh(np.cov(centred.T))  # ascending
    top = vectors[:, ::-1][:, :2]
    expected = centred @ top
    for k in range(2):  # each axis is defined up to its sign
        sign = np.sign(coords[:, k] @ expected[:, k])
        np.testing.assert_allclose(coords[:, k], sign * expected[:, k], atol=1e-8)
    np.testing.assert_allclose(explained, values[::-1][:2] / values.sum(), rtol=1e-6)
    assert explained[0] > 0.9  # the two senses are the main direction of variation


def test_map_plots_those_points(tmp_path):
    x = _two_senses(1)
    labels = [f"sentence {k}" for k in range(6)]
    groups = ["river"] * 3 + ["money"] * 3
    path = embedding_map(x, labels, tmp_path / "bank.png", word="bank", groups=groups)
    assert imread(path).shape[:2] == (600, 800) and path.stat().st_size > 15_000
    fig = embedding_figure(x, labels, word="bank", groups=groups)
    ax = fig.axes[0]
    plotted = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(plotted, pca_2d(x)[0])
    assert [t.get_text() for t in ax.texts] == labels
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["river", "money"]
    assert "'bank'" in ax.get_title()


def test_two_points_still_map_and_one_point_is_an_error():
    coords, explained = pca_2d(np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
    # the second axis carries no variance: zero up to rounding of the SVD (|coords| ~ 1.4)
    assert coords[:, 1] == pytest.approx([0.0, 0.0], abs=1e-12) and explained[0] == pytest.approx(1.0)
    assert abs(coords[0, 0] - coords[1, 0]) == pytest.approx(np.sqrt(8))
    with pytest.raises(BertkitError, match="at least 2 vectors"):
        pca_2d(np.ones((1, 3)))
    with pytest.raises(BertkitError, match="2 labels for 3 vectors"):
        embedding_figure(np.ones((3, 3)), ["a", "b"])
