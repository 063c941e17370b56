"""[MASK] filling: the most likely vocabulary entries for each [MASK], with probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.export.runner import load_onnx
from bertkit.inference.batches import calibration_batches, for_each_batch, tokenize
from bertkit.inference.runtime import dtype_kind, load, prepare

MASK = "[MASK]"  # BERT's mask token, matched as written (an added special token)


def fill_mask(
    texts: Sequence[str] | str,
    model: Any = None,
    tokenizer: Any = None,
    top_k: int = 5,
    batch_size: int = 32,
    dtype: Any = None,
    device: Any = None,
    backend: str = "torch",
    **hub: Any,
) -> list:
    """The top_k words for each [MASK] with their probabilities, best first.

    One [MASK] gives a list of {"token", "token_str", "score", "sequence"} (Hugging Face's
    fill-mask keys); several give one such list per mask, whose "sequence" keeps the special
    tokens so the other [MASK]s stay visible (as transformers does). Only the [MASK] rows go
    through the vocabulary-sized decoder. device, dtype, backend and the hub options as in `embed`.
    """
    single = isinstance(texts, str)
    items = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(items):  # checked before any model is loaded
        if not isinstance(text, str):
            raise BertkitError("texts must be a list of strings")
        if MASK not in text:
            raise BertkitError(f"fill-mask: text {i} has no {MASK} {text!r}")
    model, tokenizer = load(
        model, tokenizer, head="BertForMaskedLM", backend=backend, dtype=dtype, device=device, **hub
    )
    _check_mlm_head(model)
    if top_k < 1:
        raise BertkitError(f"top_k must be >= 1, got {top_k}")
    mask_id = tokenizer.token_to_id(MASK)
    if mask_id is None:
        raise BertkitError(f"the tokenizer has no {MASK} token")
    encoded = tokenize(tokenizer, items, model.config.max_position_embeddings)
    for i, ids in enumerate(encoded["input_ids"]):
        if mask_id not in ids:
            raise BertkitError(f"fill-mask: text {i} has no [MASK] {items[i]!r} (or it was truncated away)")
    kind = dtype_kind(dtype)
    runner = prepare(model, kind, calibration_batches(encoded) if kind == "int8" else None, device)
    results: list = [None] * len(items)
    ids_all = encoded["input_ids"]

    def consume(idx: list[int], out: Any, mask: torch.Tensor) -> None:
        logits = out.logits if hasattr(out, "logits") else out.prediction_logits  # [N masks, V]
        top = logits.float().softmax(-1).topk(min(top_k, logits.shape[-1]), dim=-1)
        values, indices = top.values.tolist(), top.indices.tolist()
        k = 0
        for i in idx:
            per_mask = []
            positions = [p for p, t in enumerate(ids_all[i]) if t == mask_id]
            for position in positions:
                alone = len(positions) == 1
                per_mask.append(
                    [_candidate(tokenizer, ids_all[i], position, t, s, alone) for s, t in zip(values[k], indices[k])]
                )
                k += 1
            results[i] = per_mask[0] if len(per_mask) == 1 else per_mask

    for_each_batch(runner, encoded, batch_size, consume, mask_token_id=mask_id)
    return results[0] if single else results


def _check_mlm_head(model: Any) -> None:
    if not isinstance(model, torch.nn.Module):  # an exported graph: its task says whether it has the head
        load_onnx(model, "BertForMaskedLM")
        return
    info = getattr(model, "loading_info", None)
    if info is not None and any(k.startswith("cls.predictions") for k in info.newly_initialized):
        raise BertkitError(
            f"{getattr(model, 'name_or_path', 'model')} has no masked-LM head weights "
            "(cls.predictions.*); fill-mask needs a model pretrained with MLM"
        )
    if not hasattr(model, "cls") or not hasattr(model.cls, "predictions"):
        raise BertkitError("fill-mask needs a BertForMaskedLM or BertForPreTraining model")


def _candidate(tokenizer: Any, ids: list[int], position: int, token: int, score: float, alone: bool) -> dict[str, Any]:
    filled = list(ids)
    filled[position] = token
    return {
        "token": token,
        "token_str": tokenizer.id_to_token(token),
        "score": score,
        "sequence": tokenizer.decode(filled, skip_special_tokens=alone),
    }
