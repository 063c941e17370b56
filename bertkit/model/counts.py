"""How many parameters each part of BERT has, from the config alone (nothing is allocated).

The counts follow the modules of bert.py and heads.py: a Linear(in, out) has in*out weights and
out biases, a LayerNorm 2H; the MLM decoder shares the token-embedding matrix and adds only its
bias. tests/model/test_counts.py checks every row against a built model.

BERT-base comes to 109.5M (the "110M" of the paper), BERT-large to 335.1M ("340M"). The lecture
gives BERT-large 310M: with the feed-forward width 4H = 4096 every one of its 24 layers holds
12.6M parameters, which no smaller total can accommodate (docs/concepts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from bertkit.model.config import BertConfig


@dataclass(frozen=True)
class Part:
    name: str  # e.g. "layer 3: attention"
    count: int
    detail: str  # what it is made of, in the config's sizes
    group: str  # "embeddings" | "encoder" | "pooler" | "heads"


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def parameter_counts(config: BertConfig) -> list[Part]:
    """One Part per module: embeddings (token, segment, position, LayerNorm), each encoder layer's
    attention and FFN, the pooler, the MLM and NSP heads."""
    H, I, V = config.hidden_size, config.intermediate_size, config.vocab_size
    P, T, A = config.max_position_embeddings, config.type_vocab_size, config.num_attention_heads
    norm = 2 * H
    parts = [
        Part("embeddings: token", V * H, f"{V:,} x {H}", "embeddings"),
        Part("embeddings: segment", T * H, f"{T} x {H}", "embeddings"),
        Part("embeddings: position", P * H, f"{P} x {H}", "embeddings"),
        Part("embeddings: LayerNorm", norm, f"2 x {H}", "embeddings"),
    ]
    attention = 4 * _linear(H, H) + norm
    ffn = _linear(H, I) + _linear(I, H) + norm
    for i in range(config.num_hidden_layers):
        parts.append(
            Part(f"layer {i}: attention", attention, f"Q, K, V, output {H}x{H} ({A} heads) + LayerNorm", "encoder")
        )
        parts.append(Part(f"layer {i}: FFN", ffn, f"{H} -> {I} -> {H} + LayerNorm", "encoder"))
    parts += [
        Part("pooler", _linear(H, H), f"{H}x{H} + tanh on [CLS]", "pooler"),
        Part("MLM head", _linear(H, H) + norm + V, f"{H}x{H} + LayerNorm + {V:,} biases (decoder tied)", "heads"),
        Part("NSP head", _linear(H, 2), f"{H} -> 2", "heads"),
    ]
    return parts


def total(parts: list[Part], heads: bool = False) -> int:
    """BertModel's parameters (embeddings, encoder, pooler), or BertForPreTraining's with heads=True."""
    return sum(p.count for p in parts if heads or p.group != "heads")
