"""One sentence (or pair) seen through a model: its tokens and every head's attention.

`compute_attention` is the thin function that runs a model to get an `Attention`; its to_png /
to_html hand the plain data (tokens, [L, A, T, T] weights) to the renderers, which only ever see
that data (bertkit.viz.stack), so they can be tested on synthetic arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.errors import BertkitError
from bertkit.viz.attention_html import attention_html
from bertkit.viz.attention_png import attention_png
from bertkit.viz.stack import as_attention_stack, check_index


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
        return attention_png(self.tokens, self.weights, path, layer=layer, head=head, type_ids=self.type_ids)

    def to_html(self, path: str | Path, title: str | None = None, layer: int = 0, head: int = 0) -> Path:
        return attention_html(
            self.tokens, self.weights, path, type_ids=self.type_ids, title=title, layer=layer, head=head
        )


def compute_attention(
    model: Any, tokenizer: Any, text: str, pair: str | None = None, max_seq_len: int | None = None
) -> Attention:
    """Run `model` on one sentence (or pair) and collect every head's attention probabilities.

    A text longer than the model's maximum is truncated to `max_seq_len` tokens (default: the
    model's max_position_embeddings) with a warning, rather than failing deep inside the model.
    `tokenizer` is a bertkit Tokenizer (it must support `tokenizer(..., truncation=True)`).
    """
    limit = max_seq_len or int(model.config.max_position_embeddings)
    encoding = encode_for_model(tokenizer, text, pair, limit)
    ids, type_ids, tokens = list(encoding.ids), list(encoding.type_ids), list(encoding.tokens)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    input_ids = torch.tensor([ids], device=device)
    model.eval()
    with torch.inference_mode():
        out = model(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            token_type_ids=torch.tensor([type_ids], device=device),
            output_attentions=True,
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
