"""PNG views: files are real images, and what is drawn is the attention given, cell for cell."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread
from viz_synthetic import pair_tokens, random_attention

from bertkit.errors import BertkitError
from bertkit.viz import attention_png, head_figure, head_summary, layer_figure, overview_figure


def _cell_colours(png: np.ndarray, fig, ax, n: int) -> np.ndarray:
    """Sample the saved PNG at the centre of each heatmap cell -> [n, n, 3] RGB."""
    height, width = png.shape[:2]
    assert (width, height) == tuple(int(round(v)) for v in fig.get_size_inches() * fig.dpi)
    x0, y0, w, h = ax.get_position().bounds  # figure fractions; the layout is fixed, no tight bbox
    cols = ((x0 + (np.arange(n) + 0.5) * w / n) * width).astype(int)
    rows = ((1 - (y0 + h - (np.arange(n) + 0.5) * h / n)) * height).astype(int)  # row 0 is at the top
    return png[rows[:, None], cols[None, :], :3]


def test_head_png_pixels_are_the_attention_matrix(tmp_path):
    tokens, type_ids = pair_tokens(7, 5)
    att = random_attention(3, 4, len(tokens))
    path = attention_png(tokens, att, tmp_path / "head.png", layer=1, head=2, type_ids=type_ids)
    png = imread(path)
    fig = head_figure(tokens, att, 1, 2, type_ids=type_ids)  # the same, deterministic figure
    ax = fig.axes[0]
    image = ax.images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), att[1, 2])
    expected = colormaps["Blues"](image.norm(att[1, 2].astype(np.float64)))[..., :3]
    drawn = _cell_colours(png, fig, ax, len(tokens))
    assert np.abs(drawn - expected).max() < 2.5 / 255
    # tokens on both axes, coloured by segment
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    colours = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert colours["a0"] != colours["##b0"]


def test_sixty_tokens_make_a_large_readable_image(tmp_path):
    tokens, type_ids = pair_tokens(30, 27)
    assert len(tokens) == 60
    att = random_attention(2, 12, 60, seed=1)
    path = attention_png(tokens, att, tmp_path / "long.png", layer=0, head=5, type_ids=type_ids)
    png = imread(path)
    height, width = png.shape[:2]
    assert width >= 1000 and height >= 1000  # ~16 px per token row at least
    assert path.stat().st_size > 30_000
    assert len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 50  # not a blank canvas
    fig = head_figure(tokens, att, 0, 5)
    x0, y0, w, h = fig.axes[0].get_position().bounds
    assert h * height / 60 >= 14  # pixels per token row
    assert min(t.get_fontsize() for t in fig.axes[0].get_yticklabels()) >= 6


def test_layer_grid_draws_every_head(tmp_path):
    tokens, type_ids = pair_tokens(4, 3)
    att = random_attention(2, 6, len(tokens), seed=2)
    path = attention_png(tokens, att, tmp_path / "layer.png", layer=-1, type_ids=type_ids)
    assert imread(path).shape[1] > 600 and path.stat().st_size > 20_000
    fig = layer_figure(tokens, att, -1)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heatmaps] == [f"head {h}" for h in range(6)]
    for h, ax in enumerate(heatmaps):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), att[1, h])


def test_overview_shows_entropy_and_special_token_attention(tmp_path):
    tokens, _ = pair_tokens(5, 4)
    n = len(tokens)
    att = random_attention(3, 4, n, seed=3)
    att[0, 0] = 1.0 / n  # uniform: entropy log2(n)
    att[1, 2] = 0.0
    att[1, 2, :, 0] = 1.0  # everyone looks at [CLS]: entropy 0, attention to [CLS] 1
    summary = head_summary(tokens, att)
    assert summary["entropy (bits)"][0, 0] == pytest.approx(np.log2(n), abs=1e-5)
    assert summary["entropy (bits)"][1, 2] == pytest.approx(0.0, abs=1e-6)
    assert summary["attention to [CLS]"][1, 2] == pytest.approx(1.0)
    sep = [i for i, t in enumerate(tokens) if t == "[SEP]"]
    assert summary["attention to [SEP]"][2, 3] == pytest.approx(att[2, 3][:, sep].sum(-1).mean(), rel=1e-5)

    path = attention_png(tokens, att, tmp_path / "overview.png")
    assert path.stat().st_size > 20_000
    fig = overview_figure(tokens, att)
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in panels] == list(summary)
    for ax, values in zip(panels, summary.values()):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), values)
        assert len(ax.texts) == values.size  # every cell is annotated with its number


def test_accepts_the_models_per_layer_tuple():
    torch = pytest.importorskip("torch")
    tokens, _ = pair_tokens(2, 2)
    att = random_attention(2, 3, len(tokens))
    as_model_gives = tuple(torch.from_numpy(a)[None] for a in att)  # L x [1, A, T, T]
    fig = head_figure(tokens, as_model_gives, 1, 0)
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()), att[1, 0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer": 3, "head": 0}, "layer 3 is out of range: the model has 3 layers"),
        ({"layer": -4}, "layer -4 is out of range"),
        ({"layer": 0, "head": 4}, "head 4 is out of range: the model has 4 heads"),
        ({"head": 1}, "head given without layer"),
    ],
)
def test_bad_layer_or_head_is_a_clear_error(tmp_path, kwargs, message):
    tokens, _ = pair_tokens(2, 2)
    with pytest.raises(BertkitError, match=message):
        attention_png(tokens, random_attention(3, 4, len(tokens)), tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_token_count_must_match(tmp_path):
    with pytest.raises(BertkitError, match="cover 6 tokens but 5 tokens"):
        attention_png(["a"] * 5, random_attention(1, 1, 6), tmp_path / "x.png")
