"""The BERT network, in the seed's order: Embeddings -> BertLayer x L -> Pooler.

Parameter names are Hugging Face's state-dict keys (`encoder.layer.0.attention.self.query.weight`,
...), so checkpoints from either library load without renaming. One deliberate difference inside:
query, key and value are a single fused projection (`qkv`, one matmul instead of three); hooks
split it into HF's three keys in `state_dict()` and merge them back in `load_state_dict()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertkit.errors import BertkitError
from bertkit.model.config import ACTIVATIONS, BertConfig
from bertkit.model.outputs import BaseModelOutputWithPooling
from bertkit.model.pretrained import BertPreTrainedModel

SHORT_SEQUENCE = 16  # at inference, attention over at most this many tokens takes the explicit path


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    kind = ACTIVATIONS[name]
    if kind == "gelu":
        return F.gelu
    if kind == "gelu_tanh":  # the seed's 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
        return lambda x: F.gelu(x, approximate="tanh")
    return {"relu": F.relu, "silu": F.silu}[kind]


def dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout multiplier shaped like `like`: 0 with probability p, else 1/(1-p).

    Why not torch's own dropout: on CPU its bernoulli_ draws one random double per element, which
    measured 12-17% of a fine-tuning step (MiniLM, CoNLL / SQuAD batches, 2 threads). Here every
    element gets 16 bits of one int64 draw (4 elements per draw), compared against a threshold:
    p is realised in steps of 1/65,536 (0.1 -> 0.100006), from torch's seeded generator, so runs
    stay reproducible and resumable.
    """
    n = like.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=like.device)
    bits = words.view(torch.int16)[:n].view(like.shape)  # uniform over [-32768, 32767]
    keep = bits >= -32768 + round(p * 65536)
    return torch.where(keep, 1.0 / (1.0 - p), 0.0).to(like.dtype)


def use_own_dropout(x: torch.Tensor, p: float, training: bool) -> bool:
    """The bit-mask dropout above on CPU; CUDA's fused dropout kernel is already cheap."""
    return training and p > 0 and x.device.type == "cpu"


class Dropout(nn.Dropout):
    """nn.Dropout with the cheaper CPU mask of `dropout_mask` (same module name and repr)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_own_dropout(x, self.p, self.training) and not self.inplace:
            return x * dropout_mask(x, self.p)
        return super().forward(x)

    def add_to(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """residual + dropout(x); on CPU the mask and the add run as one addcmul pass."""
        if use_own_dropout(x, self.p, self.training):
            return torch.addcmul(residual, x, dropout_mask(x, self.p))
        return self(x) + residual


class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, summed, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
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


@dataclass
class Packing:
    """Where a padded batch's real tokens sit, so the position-wise layers can skip the padding.

    Training a token or sentence classifier, every Linear, GELU and LayerNorm runs on the packed
    [N, H] rows of real tokens only (N = attention_mask.sum()); attention, which needs the
    [B, T] layout, pads its projections back, and packs its output again.
    """

    index: torch.Tensor  # [N] flat positions of the real tokens in B*T, ascending
    batch: int
    length: int

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Packing:
        return cls(attention_mask.flatten().nonzero().squeeze(1), *attention_mask.shape)

    def pack(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, F] -> [N, F]
        return x.reshape(self.batch * self.length, x.shape[-1]).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:  # [N, F] -> [B, T, F], zeros at the padding
        full = x.new_zeros(self.batch * self.length, x.shape[-1]).index_copy(0, self.index, x)
        return full.view(self.batch, self.length, x.shape[-1])


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention.

    The fast path is `F.scaled_dot_product_attention` (fused kernel, no [T, T] tensor kept);
    the explicit path computes softmax(QK^T / sqrt(d) + mask) itself and is taken when the
    caller wants the attention probabilities, for very short inputs (faster there), and when
    training with attention dropout on CPU, where SDPA falls back to its own unfused math
    with torch's slow dropout anyway.
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
        first_only: bool = False,
        packing: Packing | None = None,
    ):
        B, T, H = (packing.batch, packing.length, x.shape[-1]) if packing is not None else x.shape
        if first_only and type(self.qkv) is nn.Linear:  # the first query only; keys/values see every token
            w, b = self.qkv.weight, self.qkv.bias
            q = (
                F.linear(x[:, :1], w[:H], b[:H]).view(B, 1, self.num_heads, self.head_size).transpose(1, 2)
            )  # [B, A, 1, D]
            kv = F.linear(x, w[H:], b[H:]).view(B, T, 2, self.num_heads, self.head_size)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # 2 x [B, A, T, D]
        else:
            qkv = self.qkv(x)
            qkv = (packing.pad(qkv) if packing is not None else qkv).view(
                B, T, 3, self.num_heads, self.head_size
            )  # [B, T, 3, A, D]
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [B, A, T, D]
            q = q[:, :, :1] if first_only else q  # a replaced projection (int8): slice after it
        rows = q.shape[2]  # T, or 1 with first_only
        dropout_p = self.dropout_p if self.training else 0.0
        own_dropout = use_own_dropout(x, dropout_p, self.training)
        probs = None
        # short sequences (T <= 16): three small batched ops beat the fused kernel's per-block set-up
        if output_attentions or (rows <= SHORT_SEQUENCE and not self.training) or own_dropout:
            scale = 1.0 / math.sqrt(self.head_size)
            if mask is not None and own_dropout:
                # training: scale and mask ride in the matmul (mask + scale * QK^T), two passes fewer
                # over [B, A, rows, T]; inference keeps Hugging Face's order, bit for bit
                bias = mask.expand(B, self.num_heads, 1, T).reshape(B * self.num_heads, 1, T)
                scores = torch.baddbmm(
                    bias,
                    q.reshape(B * self.num_heads, rows, self.head_size),
                    k.reshape(B * self.num_heads, T, self.head_size).transpose(1, 2),
                    alpha=scale,
                )
                scores = scores.view(B, self.num_heads, rows, T)
            else:
                scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # [B, A, rows, T]
                if mask is not None:
                    scores = scores + mask
            probs = scores.softmax(dim=-1)
            if own_dropout:
                dropped = probs * dropout_mask(probs, dropout_p)
            else:
                dropped = F.dropout(probs, dropout_p, self.training)
            context = torch.matmul(dropped, v)
            probs = probs if output_attentions else None
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        context = context.transpose(1, 2).reshape(B, rows, H)  # [B, A, rows, D] -> [B, rows, H]
        return (packing.pack(context) if packing is not None else context), probs


def _split_qkv(module, state_dict, prefix, local_metadata) -> None:
    """state_dict(): `qkv.*` -> Hugging Face's `query.*`, `key.*`, `value.*`."""
    for kind in ("weight", "bias"):
        fused = state_dict.pop(prefix + "qkv." + kind, None)
        if fused is not None:
            for name, part in zip(("query", "key", "value"), fused.chunk(3, dim=0)):
                state_dict[f"{prefix}{name}.{kind}"] = part


def _merge_qkv(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs) -> None:
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
        return self.LayerNorm(self.dropout.add_to(self.dense(x), residual))


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
        first_only: bool = False,
        packing: Packing | None = None,
    ):
        context, probs = self.self(x, mask, output_attentions, first_only, packing)
        return self.output(context, x[:, :1] if first_only else x), probs


class BertIntermediate(nn.Module):
    """The feed-forward's widening half: H -> intermediate_size, then GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


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
        first_only: bool = False,
        packing: Packing | None = None,
    ):
        x, probs = self.attention(x, mask, output_attentions, first_only, packing)  # [B, 1, H] when first_only
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
        x,
        mask,
        output_hidden_states=False,
        output_attentions=False,
        cls_only=False,
        packing: Packing | None = None,
    ):
        """cls_only: the last layer computes the first ([CLS]) position only, all a classifier reads.
        packing: x holds the real tokens only ([N, H]); the result is padded back to [B, T, H]."""
        hidden_states = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for i, layer in enumerate(self.layer):
            first_only = cls_only and i == len(self.layer) - 1
            if first_only and packing is not None:  # the [CLS]-only layer works on the padded layout
                x, packing = packing.pad(x), None
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x, probs = torch.utils.checkpoint.checkpoint(
                    layer, x, mask, output_attentions, first_only, packing, use_reentrant=False
                )
            else:
                x, probs = layer(x, mask, output_attentions, first_only, packing)
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                attentions.append(probs)
        if packing is not None:
            x = packing.pad(x)
        return x, hidden_states, attentions


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
    ) -> BaseModelOutputWithPooling:
        """Two switches of bertkit's own, for heads that read only part of the output:
        cls_only=True: the last layer computes the [CLS] row alone, so last_hidden_state is
        [B, 1, H]; the pooled output is the same, for ~1/L less work (a sentence classifier).
        skip_padding=True: the position-wise layers run on the real tokens only (see Packing);
        outputs at padded positions are then 0 instead of values nobody reads.
        Hidden states and attentions, when asked for, stay whole and padded as usual."""
        check_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, H]
        mask = additive_mask(attention_mask, x.dtype)  # [B, 1, 1, T] or None (no padding)
        plain = not (output_hidden_states or output_attentions)
        cls_only = cls_only and plain
        packing = Packing.of(attention_mask) if skip_padding and plain and mask is not None else None
        if packing is not None:
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
    """[B, T] of 1 (token) / 0 (padding) -> [B, 1, 1, T] of 0 / most-negative, added to scores.

    A batch without padding needs no mask at all, which lets SDPA take its fastest kernel.
    """
    if attention_mask is None:
        return None
    keep = attention_mask.bool()
    if not torch.compiler.is_compiling() and bool(keep.all()):
        return None
    mask = torch.zeros(keep.shape, dtype=dtype, device=keep.device)
    mask.masked_fill_(~keep, torch.finfo(dtype).min)
    return mask[:, None, None, :]


def check_inputs(config: BertConfig, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds) -> None:
    """Refuse inputs that would index outside the embedding tables, with the value and the fix."""
    if (input_ids is None) == (inputs_embeds is None):
        raise BertkitError("pass exactly one of input_ids or inputs_embeds")
    if torch.compiler.is_compiling():
        return
    if input_ids is not None:
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point:
            raise BertkitError(
                f"input_ids must be an integer tensor of shape [batch, seq], got {input_ids.dtype} "
                f"{list(input_ids.shape)}"
            )
        shape = input_ids.shape
        if input_ids.numel():
            lo, hi = torch.aminmax(input_ids)
            if lo < 0 or hi >= config.vocab_size:
                bad = int(hi) if hi >= config.vocab_size else int(lo)
                raise BertkitError(
                    f"input_ids contain id {bad}, outside the vocabulary of {config.vocab_size}; use the "
                    f"tokenizer that belongs to this model (or a config with a larger vocab_size)"
                )
    else:
        shape = inputs_embeds.shape[:2]
    T = shape[1]
    if T > config.max_position_embeddings and position_ids is None:
        raise BertkitError(
            f"sequence length {T} exceeds max_position_embeddings {config.max_position_embeddings}; "
            f"truncate the input (tokenizer max_length={config.max_position_embeddings})"
        )
    if position_ids is not None and position_ids.numel():
        if int(position_ids.max()) >= config.max_position_embeddings or int(position_ids.min()) < 0:
            raise BertkitError(f"position_ids must lie in [0, {config.max_position_embeddings})")
    if token_type_ids is not None:
        if tuple(token_type_ids.shape) != tuple(shape):
            raise BertkitError(
                f"token_type_ids shape {list(token_type_ids.shape)} differs from input shape {list(shape)}"
            )
        if token_type_ids.numel():
            lo, hi = torch.aminmax(token_type_ids)
            if lo < 0 or hi >= config.type_vocab_size:
                raise BertkitError(f"token_type_ids must lie in [0, {config.type_vocab_size}), got {int(hi)}")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(shape):
        raise BertkitError(f"attention_mask shape {list(attention_mask.shape)} differs from input shape {list(shape)}")
