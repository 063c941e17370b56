"""Attention maps as plain data: the tokens and an [L, A, T, T] array of probabilities.

The renderers (attention_png.py, attention_html.py) only ever see this data, so they can be
tested on synthetic arrays; `compute_attention` is the thin function that runs a model to get it.
Layers and heads are numbered from 0, as in `outputs.attentions[layer][:, head]`; negative
numbers count from the end, as in Python.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Attention:
    """One sentence (or pair) seen through a model: its tokens and every head's attention."""

    tokens: list[str]
    weights: np.ndarray  # [L, A, T, T]: weights[l, a, i, j] = how much token i attends to token j
    type_ids: list[int]  # 0 for sentence A (with [CLS] and its [SEP]), 1 for sentence B

    def __post_init__(self) -> None:
        stack = as_attention_stack(self.weights)
        object.__setattr__(self, "weights", stack)
        if stack.shape[-1] != len(self.tokens):
            raise BertkitError(f"attentions cover {stack.shape[-1]} tokens but {len(self.tokens)} tokens were given")
        if len(self.type_ids) != len(self.tokens):
            raise BertkitError(f"got {len(self.type_ids)} type ids for {len(self.tokens)} tokens")

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def head(self, layer: int, head: int) -> np.ndarray:
        """The [T, T] map of one head; rows are the attending tokens and sum to 1."""
        layer = check_index(layer, self.num_layers, "layer")
        head = check_index(head, self.num_heads, "head")
        return self.weights[layer, head]

    def to_png(self, path: str | Path, layer: int | None = None, head: int | None = None) -> Path:
        from bertkit.viz.attention_png import attention_png

        return attention_png(self.tokens, self.weights, path, layer=layer, head=head, type_ids=self.type_ids)

    def to_html(self, path: str | Path, title: str | None = None, layer: int = 0, head: int = 0) -> Path:
        from bertkit.viz.attention_html import attention_html

        return attention_html(
            self.tokens, self.weights, path, type_ids=self.type_ids, title=title, layer=layer, head=head
        )


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


def compute_attention(
    model: Any, tokenizer: Any, text: str, pair: str | None = None, max_length: int | None = None
) -> Attention:
    """Run `model` on one sentence (or pair) and collect every head's attention probabilities.

    A text longer than the model's maximum is truncated to `max_length` tokens (default: the
    model's max_position_embeddings) with a warning, rather than failing deep inside the model.
    `tokenizer` is a bertkit Tokenizer (it must support `tokenizer(..., truncation=True)`).
    """
    import torch

    limit = max_length or int(model.config.max_position_embeddings)
    encoding = encode_for_model(tokenizer, text, pair, limit)
    ids, type_ids, tokens = list(encoding.ids), list(encoding.type_ids), list(encoding.tokens)
    input_ids = torch.tensor([ids])
    token_type_ids = torch.tensor([type_ids])
    model.eval()
    with torch.no_grad():
        out = model(
            input_ids, attention_mask=torch.ones_like(input_ids), token_type_ids=token_type_ids, output_attentions=True
        )
    return Attention(tokens=tokens, weights=as_attention_stack(out.attentions), type_ids=type_ids)


def encode_for_model(tokenizer: Any, text: str, pair: str | None, limit: int) -> Any:
    """The encoding of `text` (and `pair`), cut to `limit` tokens with a warning when longer.

    The cut is the tokenizer's own longest-first truncation (as in transformers), so a pair keeps
    both sentences and its [SEP]s.
    """
    encoding = tokenizer.encode(text, pair)
    if len(encoding.ids) <= limit:
        return encoding
    warnings.warn(
        f"the input has {len(encoding.ids)} tokens but the model takes at most {limit}; "
        f"cut to {limit} (longest sentence first; shorten the text to see all of it)",
        stacklevel=3,
    )
    return tokenizer(text, pair, truncation=True, max_length=limit).encodings[0]
