"""Inputs checked before the network runs: ids that would index outside the embedding tables,
shapes that disagree, sequences longer than the position table. Each refusal names the value and
the fix (a `BertkitError`), instead of an IndexError from deep inside an embedding lookup."""

from __future__ import annotations

import torch

from bertkit.errors import BertkitError
from bertkit.model.config import BertConfig
from bertkit.model.fast_paths import tracing


def check_inputs(
    config: BertConfig,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
) -> None:
    """Refuse inputs that would index outside the embedding tables, with the value and the fix."""
    if (input_ids is None) == (inputs_embeds is None):
        raise BertkitError("pass exactly one of input_ids or inputs_embeds")
    if tracing():  # the value checks below branch on data
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
    elif inputs_embeds is not None:
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
