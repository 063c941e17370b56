"""The BERT network, in the lecture's order: embeddings -> self-attention -> feed-forward -> layer
-> encoder -> pooler -> model.

Parameter names are Hugging Face's state-dict keys (`encoder.layer.0.attention.self.query.weight`,
...), so checkpoints from either library load without renaming. One deliberate difference inside:
query, key and value are a single fused projection (`qkv`, one matmul instead of three); hooks
split it into HF's three keys in `state_dict()` and merge them back in `load_state_dict()`.

The CPU speed machinery (dropout masks, padding skipped, the explicit attention path) lives in
model/fast_paths.py; this file calls it at the points where it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertkit.model.config import ACTIVATIONS, BertConfig
from bertkit.model.fast_paths import (
    Dropout,
    Embedding,
    Packing,
    c_attention,
    c_attention_applies,
    explicit_attention,
    linear,
    linear_act,
    linear_add,
    unpadded,
    use_explicit_attention,
    use_own_dropout,
)
from bertkit.model.inputs import check_inputs
from bertkit.model.outputs import BaseModelOutputWithPooling
from bertkit.model.pretrained import BertPreTrainedModel

__all__ = ["Dropout", "activation", "additive_mask", "BertModel", "BertPreTrainedModel"]


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    kind = ACTIVATIONS[name]
    if kind == "gelu":
        return F.gelu
    if kind == "gelu_tanh":  # the lecture's 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
        return lambda x: F.gelu(x, approximate="tanh")
    return {"relu": F.relu, "silu": F.silu}[kind]


# ---------------------------------------------------------------------- embeddings
class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, summed, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # [B, T] -> [B, T, H]
        T = x.shape[1]
        # without explicit ids, segment A and positions 0..T-1 are plain broadcasts, no lookups
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        if position_ids is None:
            x = x + self.position_embeddings.weight[:T]
        else:
            x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


# ---------------------------------------------------------------------- self-attention
class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention: project -> attend -> merge.

    Attention is `F.scaled_dot_product_attention` (a fused kernel, no [T, T] tensor kept), or the
    written-out softmax(QK^T / sqrt(d) + mask) V of fast_paths.explicit_attention where that is
    needed (the probabilities asked for) or faster (short inputs, CPU dropout), or at CPU inference
    on one thread fast_paths.c_attention, which reads the packed projection directly.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)  # rows: query | key | value
        self.dropout_p = config.attention_probs_dropout_prob
        self.register_state_dict_post_hook(_split_qkv)
        self.register_load_state_dict_pre_hook(_merge_qkv)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        output_attentions: bool = False,
        cls_only: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B, T, H] (or packed [N, H]) -> context [B, rows, H] (or [N, H]) and the probabilities
        [B, A, rows, T] when asked for; rows = T, or 1 with cls_only."""
        if not (output_attentions or cls_only) and (packing is not None or mask is None):
            if c_attention_applies(x, self.head_size, self.training):  # CPU inference, one thread
                return c_attention(linear(self.qkv, x), packing, self.num_heads), None
        q, k, v = self.project(x, cls_only, packing)  # 3 x [B, A, rows or T, D]
        dropout_p = self.dropout_p if self.training else 0.0
        own_dropout = use_own_dropout(x, dropout_p, self.training)
        probs = None
        if use_explicit_attention(q, output_attentions, own_dropout, self.training):
            context, probs = explicit_attention(q, k, v, mask, dropout_p, self.training)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self.merge(context, packing), probs if output_attentions else None

    def project(
        self, x: torch.Tensor, cls_only: bool, packing: Packing | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The query, key and value heads, 3 x [B, A, ., D]; with cls_only the first query only."""
        B, T = (packing.batch, packing.length) if packing is not None else x.shape[:2]
        H = self.num_heads * self.head_size
        if cls_only and type(self.qkv) is nn.Linear:  # one query row; keys and values see every token
            w, b = self.qkv.weight, self.qkv.bias
            (q,) = self.heads(F.linear(x[:, :1], w[:H], b[:H]), B, 1, 1)
            k, v = self.heads(F.linear(x, w[H:], b[H:]), B, T, 2)
            return q, k, v
        qkv = linear(self.qkv, x)  # self.qkv(x), on oneDNN at CPU inference
        q, k, v = self.heads(packing.pad(qkv) if packing is not None else qkv, B, T, 3)
        return (q[:, :, :1] if cls_only else q), k, v  # a replaced projection (int8): slice after it

    def heads(self, projected: torch.Tensor, B: int, T: int, parts: int) -> tuple[torch.Tensor, ...]:
        """[B, T, parts * H] -> parts x [B, A, T, D]."""
        return projected.view(B, T, parts, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)

    def merge(self, context: torch.Tensor, packing: Packing | None) -> torch.Tensor:
        """[B, A, rows, D] -> [B, rows, H] (packed again to [N, H] when the input was)."""
        B, _, rows, _ = context.shape
        merged = context.transpose(1, 2).reshape(B, rows, self.num_heads * self.head_size)
        return packing.pack(merged) if packing is not None else merged


def _split_qkv(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    """state_dict(): `qkv.*` -> Hugging Face's `query.*`, `key.*`, `value.*`."""
    for kind in ("weight", "bias"):
        fused = state_dict.pop(prefix + "qkv." + kind, None)
        if fused is not None:
            for name, part in zip(("query", "key", "value"), fused.chunk(3, dim=0)):
                state_dict[f"{prefix}{name}.{kind}"] = part


def _merge_qkv(module: nn.Module, state_dict: dict, prefix: str, *_: Any) -> None:
    """load_state_dict(): Hugging Face's three projections -> the fused `qkv.*`."""
    for kind in ("weight", "bias"):
        keys = [f"{prefix}{name}.{kind}" for name in ("query", "key", "value")]
        if all(k in state_dict for k in keys):
            state_dict[prefix + "qkv." + kind] = torch.cat([state_dict.pop(k) for k in keys], dim=0)


class AddNorm(nn.Module):
    """Project, dropout, add the residual, LayerNorm: HF's BertSelfOutput and BertOutput."""

    def __init__(self, in_features: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        summed = linear_add(self.dense, x, residual)  # one oneDNN kernel at CPU inference (no dropout then)
        if summed is None:
            summed = self.dropout.add_to(self.dense(x), residual)
        return self.LayerNorm(summed)


class BertAttention(nn.Module):
    """Self-attention followed by its output projection + residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = AddNorm(config.hidden_size, config)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        output_attentions: bool = False,
        cls_only: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.self(x, mask, output_attentions, cls_only, packing)
        return self.output(context, x[:, :1] if cls_only else x), probs


# ---------------------------------------------------------------------- feed-forward
class BertIntermediate(nn.Module):
    """The feed-forward's widening half: H -> intermediate_size, then GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)
        self.act_kind = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = linear_act(self.dense, x, self.act_kind)  # one oneDNN kernel at CPU inference
        return fused if fused is not None else self.act(self.dense(x))


# ---------------------------------------------------------------------- layer and encoder
class BertLayer(nn.Module):
    """One encoder block: attention sub-layer, then feed-forward sub-layer, each Add & Norm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = AddNorm(config.intermediate_size, config)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        output_attentions: bool = False,
        cls_only: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, probs = self.attention(x, mask, output_attentions, cls_only, packing)  # [B, 1, H] with cls_only
        x = self.output(self.intermediate(x), x)
        return x, probs


class BertEncoder(nn.Module):
    """L identical layers; optionally keeps every layer's output and attention probabilities."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        cls_only: bool = False,
        packing: Packing | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[torch.Tensor] | None]:
        """cls_only: the last layer computes the first ([CLS]) position only, all a classifier reads.
        packing: x holds the real tokens only ([N, H]); the result is padded back to [B, T, H]."""
        hidden_states: list[torch.Tensor] | None = [x] if output_hidden_states else None
        attentions: list[torch.Tensor] | None = [] if output_attentions else None
        for i, layer in enumerate(self.layer):
            last_cls_only = cls_only and i == len(self.layer) - 1
            if last_cls_only and packing is not None:  # the [CLS]-only layer works on the padded layout
                x, packing = packing.pad(x), None
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x, probs = torch.utils.checkpoint.checkpoint(
                    layer, x, mask, output_attentions, last_cls_only, packing, use_reentrant=False
                )
            else:
                x, probs = layer(x, mask, output_attentions, last_cls_only, packing)
            if hidden_states is not None:
                hidden_states.append(x)
            if attentions is not None and probs is not None:
                attentions.append(probs)
        if packing is not None:
            x = packing.pad(x)
        return x, hidden_states, attentions


# ---------------------------------------------------------------------- pooler
class BertPooler(nn.Module):
    """The [CLS] vector through dense + tanh: the sentence-level output used by NSP and classifiers."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # [B, T, H] -> [B, H]


class BertModel(BertPreTrainedModel):
    """The bare encoder: ids [B, T] -> hidden states [B, T, H] and the pooled [CLS] vector [B, H]."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        return_dict: bool = True,
        cls_only: bool = False,
        skip_padding: bool = False,
    ) -> Any:
        """A BaseModelOutputWithPooling (its to_tuple() with return_dict=False).

        Two switches of bertkit's own, for heads that read only part of the output:
        cls_only=True: the last layer computes the [CLS] row alone, so last_hidden_state is
        [B, 1, H]; the pooled output is the same, for ~1/L less work (a sentence classifier).
        skip_padding=True: the position-wise layers run on the real tokens only (a fast_paths.Packing);
        outputs at padded positions are then 0 instead of values nobody reads.
        Hidden states and attentions, when asked for, stay whole and padded as usual."""
        check_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, H]
        padded = attention_mask is not None and not unpadded(attention_mask)
        mask = additive_mask(attention_mask, x.dtype) if padded else None  # [B, 1, 1, T]; None: no padding
        plain = not (output_hidden_states or output_attentions)
        cls_only = cls_only and plain
        packing = None
        if skip_padding and plain and padded and attention_mask is not None:
            packing = Packing.of(attention_mask)
            x = packing.pack(x)  # [N, H]
        x, hidden_states, attentions = self.encoder(x, mask, output_hidden_states, output_attentions, cls_only, packing)
        out = BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )
        return out if return_dict else out.to_tuple()


def additive_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """[B, T] of 1 (token) / 0 (padding) -> [B, 1, 1, T] of 0 / most-negative, added to the scores.

    Tensor operations only (no branch on the values), so a traced or exported graph keeps it.
    """
    if attention_mask is None:
        return None
    keep = attention_mask.bool()[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)
