"""Synthetic attention for the renderer tests: rows are softmax distributions, like a model's."""

from __future__ import annotations

import numpy as np


def random_attention(layers: int, heads: int, tokens: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(layers, heads, tokens, tokens))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)  # [L, A, T, T]


def pair_tokens(len_a: int, len_b: int) -> tuple[list[str], list[int]]:
    """[CLS] a0 .. [SEP] b0 .. [SEP] and their segment ids."""
    tokens = ["[CLS]"] + [f"a{i}" for i in range(len_a)] + ["[SEP]"] + [f"##b{i}" for i in range(len_b)] + ["[SEP]"]
    type_ids = [0] * (len_a + 2) + [1] * (len_b + 1)
    return tokens, type_ids
