"""Attention maps as plain data: an [L, A, T, T] array of probabilities, and numbers about its heads.

The lowest layer of bertkit.viz: the Attention object (attention.py) and both renderers
(attention_png.py, attention_html.py) build on these functions and never on each other, so the
renderers can be tested on synthetic arrays. Layers and heads are numbered from 0, as in
`outputs.attentions[layer][:, head]`; negative numbers count from the end, as in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertkit.errors import BertkitError


def as_attention_stack(attentions: Any) -> np.ndarray:
    """Model attentions in any usual shape -> float32 numpy [L, A, T, T].

    Accepts the model's `outputs.attentions` (a tuple of [1, A, T, T] tensors, one per layer),
    a list of [A, T, T] arrays, or one array of shape [L, A, T, T] or [L, 1, A, T, T].
    """
    if isinstance(attentions, (list, tuple)):
        layers = [_to_numpy(a) for a in attentions]
        if not layers:
            raise BertkitError("attentions: got no layers; run the model with output_attentions=True")
        layers = [a[0] if a.ndim == 4 and a.shape[0] == 1 else a for a in layers]
        stack = np.stack(layers)
    else:
        stack = _to_numpy(attentions)
        if stack.ndim == 5 and stack.shape[1] == 1:
            stack = stack[:, 0]
    if stack.ndim != 4 or stack.shape[-1] != stack.shape[-2]:
        raise BertkitError(
            f"attentions: expected shape [layers, heads, T, T] for one sentence, got {list(stack.shape)} "
            "(pass the attentions of a batch of one)"
        )
    return stack.astype(np.float32, copy=False)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def check_index(value: int, count: int, what: str) -> int:
    """A layer or head number -> its index in [0, count); a clear error when out of range."""
    if not -count <= value < count:
        raise BertkitError(
            f"{what} {value} is out of range: the model has {count} {what}s (use 0..{count - 1}, or -1 for the last)"
        )
    return value % count


def head_summary(tokens: Sequence[str], attentions: Any) -> dict[str, np.ndarray]:
    """Per-head numbers for the layers x heads overview, each [L, A].

    entropy: mean over attending tokens of the entropy (bits) of where they look — low means a
    sharp head; "to [CLS]" / "to [SEP]": mean share of attention spent on those tokens, the
    well-known "no-op" places heads park their attention.
    """
    stack = as_attention_stack(attentions).astype(np.float64)
    p = np.clip(stack, 1e-12, 1.0)
    summary = {"entropy (bits)": -(stack * np.log2(p)).sum(-1).mean(-1)}
    for special in ("[CLS]", "[SEP]"):
        where = [i for i, t in enumerate(tokens) if t == special]
        if where:
            summary[f"attention to {special}"] = stack[..., where].sum(-1).mean(-1)
    return summary
