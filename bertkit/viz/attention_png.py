"""Attention as PNG images, drawn on matplotlib.figure.Figure objects (no pyplot state, no display).

Three views, from the most detailed to the broadest:
- one head: a token x token heatmap, attending tokens down the side, attended tokens along the top;
- one layer: the same heatmap for every head of the layer, in a grid;
- the whole model: a layers x heads overview of per-head numbers (entropy, attention to [CLS]/[SEP]).
Figures grow with the sentence so that ~60 tokens stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.errors import BertkitError
from bertkit.files import atomic_path
from bertkit.viz.stack import as_attention_stack, check_index, head_summary

SEGMENT_COLOURS = ("#1f4e9c", "#b3541e")  # sentence A, sentence B (as in the HTML view)
CMAP = "Blues"


def attention_png(
    tokens: Sequence[str],
    attentions: Any,
    path: str | Path,
    *,
    layer: int | None = None,
    head: int | None = None,
    type_ids: Sequence[int] | None = None,
) -> Path:
    """Draw attentions to `path`: one head (layer and head given), one layer (layer only), or
    the layers x heads overview (neither). `attentions` as in `as_attention_stack`."""
    stack = as_attention_stack(attentions)  # [L, A, T, T]
    _check_tokens(tokens, stack)
    if layer is None and head is not None:
        raise BertkitError("head given without layer: choose a layer as well (e.g. layer=-1 for the last)")
    if layer is None:
        fig = overview_figure(tokens, stack)
    elif head is None:
        fig = layer_figure(tokens, stack, layer, type_ids=type_ids)
    else:
        fig = head_figure(tokens, stack, layer, head, type_ids=type_ids)
    return save_png(fig, path)


def head_figure(tokens: Sequence[str], attentions: Any, layer: int, head: int, type_ids: Sequence[int] | None = None):
    """Heatmap of one head: cell (i, j) = attention of token i (row) to token j (column)."""
    stack = as_attention_stack(attentions)
    layer = check_index(layer, stack.shape[0], "layer")
    head = check_index(head, stack.shape[1], "head")
    matrix = stack[layer, head]  # [T, T]
    n = len(tokens)
    cell = _cell_inches(n)
    side = max(3.0, n * cell)
    margin = 0.4 + 0.075 * max(len(t) for t in tokens)  # room for the longest token label
    fig = _figure(side + margin + 1.2, side + margin + 0.6)
    ax = fig.add_axes(_box(fig, left=margin, bottom=margin, width=side, height=side))
    image = _heatmap(ax, matrix, tokens, type_ids, font=_font(cell))
    ax.set_title(f"layer {layer}, head {head}: row attends to column", fontsize=10)
    cax = fig.add_axes(_box(fig, left=margin + side + 0.2, bottom=margin, width=0.18, height=side))
    fig.colorbar(image, cax=cax, label="attention probability")
    return fig


def layer_figure(tokens: Sequence[str], attentions: Any, layer: int, type_ids: Sequence[int] | None = None):
    """Every head of one layer side by side; labels on the outer panels only, to save room."""
    stack = as_attention_stack(attentions)
    layer = check_index(layer, stack.shape[0], "layer")
    heads = stack.shape[1]
    cols = min(heads, 4)
    rows = math.ceil(heads / cols)
    n = len(tokens)
    cell = _cell_inches(n) * 0.75
    side = max(2.0, n * cell)
    margin = 0.4 + 0.06 * max(len(t) for t in tokens)
    gap = 0.5
    fig = _figure(margin + cols * (side + gap), margin + rows * (side + gap) + 0.4)
    fig.suptitle(f"layer {layer}: all {heads} heads (row attends to column)", fontsize=12)
    for h in range(heads):
        r, c = divmod(h, cols)
        left = margin + c * (side + gap)
        bottom = margin + (rows - 1 - r) * (side + gap)
        ax = fig.add_axes(_box(fig, left=left, bottom=bottom, width=side, height=side))
        _heatmap(
            ax,
            stack[layer, h],
            tokens,
            type_ids,
            font=_font(cell),
            xlabels=r == rows - 1 or h + cols >= heads,
            ylabels=c == 0,
        )
        ax.set_title(f"head {h}", fontsize=9, pad=3)
    return fig


def overview_figure(tokens: Sequence[str], attentions: Any):
    """Layers x heads panels of per-head numbers, each cell annotated with its value."""
    stack = as_attention_stack(attentions)
    summary = head_summary(tokens, stack)
    layers, heads = stack.shape[:2]
    panel_w, panel_h = max(3.0, 0.5 * heads), max(2.0, 0.4 * layers)
    step = panel_w + 1.5  # panel + colour bar + the next panel's axis labels
    fig = _figure(len(summary) * step + 0.3, panel_h + 1.3)
    fig.suptitle(f"every head at a glance ({layers} layers x {heads} heads, {len(tokens)} tokens)", fontsize=11)
    for k, (name, values) in enumerate(summary.items()):
        left = 0.6 + k * step
        ax = fig.add_axes(_box(fig, left=left, bottom=0.55, width=panel_w, height=panel_h))
        image = ax.imshow(values, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("head", fontsize=9)
        ax.set_ylabel("layer", fontsize=9)
        ax.set_xticks(range(heads))
        ax.set_yticks(range(layers))
        ax.tick_params(labelsize=7)
        low, high = image.norm.vmin, image.norm.vmax
        for (i, j), v in np.ndenumerate(values):
            dark = (v - low) < 0.5 * (high - low)  # viridis is dark at the low end
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
        cax = fig.add_axes(_box(fig, left=left + panel_w + 0.1, bottom=0.55, width=0.15, height=panel_h))
        fig.colorbar(image, cax=cax)
        cax.tick_params(labelsize=7)
    return fig


def save_png(fig: Any, path: str | Path) -> Path:
    """Write `fig` atomically (bertkit.files: a complete file or the old one, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=fig.dpi, format="png")
    return path


def _heatmap(
    ax, matrix: np.ndarray, tokens: Sequence[str], type_ids, font: float, xlabels: bool = True, ylabels: bool = True
):
    n = len(tokens)
    image = ax.imshow(
        matrix, cmap=CMAP, vmin=0.0, vmax=max(float(matrix.max()), 1e-6), interpolation="nearest", aspect="equal"
    )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(tokens if xlabels else [], rotation=90, fontsize=font)
    ax.set_yticklabels(tokens if ylabels else [], fontsize=font)
    ax.tick_params(length=0, pad=1)
    if type_ids is not None:
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for label, segment in zip(labels, type_ids):
                label.set_color(SEGMENT_COLOURS[min(int(segment), 1)])
    return image


def _check_tokens(tokens: Sequence[str], stack: np.ndarray) -> None:
    if len(tokens) != stack.shape[-1]:
        raise BertkitError(f"attentions cover {stack.shape[-1]} tokens but {len(tokens)} tokens were given")


def _cell_inches(n: int) -> float:
    """Inches per token: roomy for short sentences, shrinking so long ones stay under ~40 inches."""
    return min(0.3, max(0.16, 4.0 / max(n, 1)), 40.0 / max(n, 1))


def _font(cell: float) -> float:
    return float(np.clip(cell * 45, 4, 9))  # a label must fit in its row: 72 pt per inch, some air


def _figure(width: float, height: float):
    # lazy: matplotlib is slow to import and only plots need it
    from matplotlib.figure import Figure  # no pyplot state, no display: works headless

    dpi = 100
    return Figure(figsize=(round(width * dpi) / dpi, round(height * dpi) / dpi), dpi=dpi)  # whole pixels


def _box(fig, left: float, bottom: float, width: float, height: float) -> list[float]:
    """A rectangle in inches -> the figure fractions add_axes wants (a fixed, predictable layout)."""
    w, h = fig.get_size_inches()
    return [left / w, bottom / h, width / w, height / h]
