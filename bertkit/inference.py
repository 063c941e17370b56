"""Feature extraction: texts -> sentence vectors, per-token and per-word vectors, [MASK] filling.

All of it runs through one batching loop: texts are tokenized once without padding, sorted by
length so that each batch pads only to its own longest row (most of a naive batch is padding on
real text), run under `torch.inference_mode`, and put back in input order. `dtype` picks the
arithmetic: float32 (exact), bfloat16 (a converted copy; on a CPU only with AVX-512 BF16/AMX,
refused without them, where it would run ~70x slower) or "int8" (dynamic int8 matmuls for the
big linear layers, see bertkit.model.quantize).
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bertkit.errors import BertkitError

POOLINGS = ("mean", "cls", "max")
_LOADED: dict[tuple, Any] = {}  # (kind, ..., folder) -> a loaded model or tokenizer, a few kept
_PREPARED: weakref.WeakKeyDictionary[torch.nn.Module, dict] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------- models and tokenizers
def load_model(
    model: Any, tokenizer: Any = None, head: str = "BertModel", backend: str = "torch", dtype: Any = None
) -> tuple[Any, Any]:
    """(model, tokenizer) from folders or objects; folders are loaded once and cached.

    With no tokenizer, the model's folder provides it (vocab.txt / tokenizer.json).
    backend="onnx": model is a folder made by `bertkit export onnx`, run by onnxruntime.
    """
    import bertkit.model as models

    if backend != "torch":
        from bertkit.export.runner import onnx_backend

        return onnx_backend(model, tokenizer, head, backend, dtype)

    if model is None:
        raise BertkitError("give model= a model folder (config.json + model.safetensors) or a loaded model")
    if isinstance(model, (str, os.PathLike)):
        model = _cached(
            ("model", head, str(Path(model).resolve())), lambda: getattr(models, head).from_pretrained(model)
        )
    if tokenizer is None:
        tokenizer = getattr(model, "name_or_path", None)
        if tokenizer is None:
            raise BertkitError("a model object without a folder needs tokenizer= (a Tokenizer or its folder)")
    if isinstance(tokenizer, (str, os.PathLike)):
        from bertkit.tokenizers import Tokenizer

        folder = tokenizer
        tokenizer = _cached(("tokenizer", str(Path(folder).resolve())), lambda: Tokenizer.from_pretrained(folder))
    return model, tokenizer


def _cached(key: tuple, load: Callable[[], Any]) -> Any:
    if key not in _LOADED:
        if len(_LOADED) >= 6:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load()
    return _LOADED[key]


def prepare(model: torch.nn.Module, dtype: Any = None, calibration: list[dict] | None = None) -> torch.nn.Module:
    """The model to run for `dtype`: itself for float32, else a converted copy (cached per model).

    The cache notices later changes to the original's weights (training) and rebuilds the copy.
    int8 calibrates its smoothing on `calibration` batches (the first texts it is given).
    """
    kind = _dtype_kind(dtype)
    if kind == "float32" and model.dtype == torch.float32:
        return model
    fingerprint = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cached = _PREPARED.setdefault(model, {}).get(kind)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    if kind in ("bfloat16", "float16") and model.device.type == "cpu" and not half_is_native(kind):
        raise BertkitError(
            f"dtype {kind}: this CPU has no native {kind} matrix units (AVX-512 BF16 / AMX), where {kind} "
            f"matmuls are emulated ~70x slower than float32; use dtype='int8' for speed, or None (float32)"
        )
    if kind == "int8":
        from bertkit.model.quantize import quantize_int8

        prepared = quantize_int8(copy.deepcopy(model).float(), calibration=calibration)
    else:
        prepared = copy.deepcopy(model).to(
            {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[kind]
        )
    prepared.eval()
    _PREPARED[model][kind] = (fingerprint, prepared)
    return prepared


def half_is_native(kind: str = "bfloat16") -> bool:
    """Whether this CPU multiplies bfloat16 (or float16) matrices in hardware."""
    try:
        if kind == "float16":
            return bool(torch.cpu._is_amx_fp16_supported())
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # another torch build: let the user decide
        return True


def _dtype_kind(dtype: Any) -> str:
    if dtype is None or dtype in (torch.float32, "float32", "fp32"):
        return "float32"
    if dtype in (torch.bfloat16, "bfloat16", "bf16"):
        return "bfloat16"
    if dtype in (torch.float16, "float16", "fp16"):
        return "float16"
    if dtype in (torch.qint8, torch.int8, "int8", "qint8"):
        return "int8"
    raise BertkitError(f"dtype {dtype!r} is not supported; use None (float32), torch.bfloat16 or 'int8'")


# ---------------------------------------------------------------------- the batching loop
def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int, offsets: bool = False):
    """Unpadded, truncated encodings: the lists the length sort works on."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise BertkitError("texts must be a list of strings")
    return tokenizer(list(texts), padding=False, truncation=True, max_length=max_length, return_offsets_mapping=offsets)


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length (longest batch first, so memory peaks at once)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]


def pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out  # [B, T]


def calibration_batches(encoded, n: int = 256, batch_size: int = 32) -> list[dict]:
    """The first n texts as padded batches: real activations for int8 calibration."""
    ids = encoded["input_ids"][:n]
    return [
        {
            "input_ids": pad(ids[b : b + batch_size], 0),
            "attention_mask": pad([[1] * len(r) for r in ids[b : b + batch_size]], 0),
        }
        for b in range(0, len(ids), batch_size)
    ]


def _calibration(encoded, dtype: Any) -> list[dict] | None:
    return calibration_batches(encoded) if _dtype_kind(dtype) == "int8" else None


def for_each_batch(
    model: torch.nn.Module,
    encoded,
    batch_size: int,
    consume: Callable,
    workers: int | None = None,
    mask_token_id: int | None = None,
    **forward: Any,
) -> None:
    """Run the model over length-sorted batches, calling consume(indices, output, mask [B, T]).

    With several CPU threads, batches go to that many worker threads with one intra-op thread
    each instead of one batch at a time on all threads: the small matmuls of short sentences
    scale poorly across threads, independent batches scale almost perfectly. With
    mask_token_id, an MLM model scores only the [MASK] positions (rows in row-major order).
    """
    if batch_size < 1:
        raise BertkitError(f"batch_size must be >= 1, got {batch_size}")
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    pad_id = model.config.pad_token_id
    batches = sorted_batches([len(r) for r in ids], batch_size)

    first = next(model.parameters(), None)  # a parameter-free model (a test double) runs on the CPU
    device = first.device if first is not None else torch.device("cpu")

    def run(idx: list[int]) -> None:
        input_ids = pad([ids[i] for i in idx], pad_id).to(device)
        mask = pad([[1] * len(ids[i]) for i in idx], 0).to(device)
        token_types = pad([types[i] for i in idx], 0).to(device) if any(any(types[i]) for i in idx) else None
        kwargs = dict(forward)
        if mask_token_id is not None:
            kwargs["masked_positions"] = input_ids == mask_token_id
        consume(idx, model(input_ids, mask, token_types, **kwargs), mask)

    threads = torch.get_num_threads() if workers is None else workers
    if device.type != "cpu":
        threads = 1  # one stream of batches keeps an accelerator busy
    was_training = model.training
    model.eval()
    try:
        if threads <= 1 or len(batches) < 2:
            with torch.inference_mode():
                for idx in batches:
                    run(idx)
        else:
            _run_in_workers(batches, run, min(threads, len(batches)))
    finally:
        model.train(was_training)


def _run_in_workers(batches: list[list[int]], run: Callable, workers: int) -> None:
    """Each worker thread takes the next batch from a shared queue (balances uneven batches)."""
    outer = torch.get_num_threads()
    lock = threading.Lock()
    state = {"next": 0, "error": None}

    def work() -> None:
        torch.set_num_threads(1)  # this thread's OpenMP/MKL pool only
        try:
            with torch.inference_mode():
                while True:
                    with lock:
                        k = state["next"]
                        if k >= len(batches) or state["error"] is not None:
                            return
                        state["next"] = k + 1
                    run(batches[k])
        except BaseException as err:  # re-raised in the caller's thread
            state["error"] = err

    pool = [threading.Thread(target=work, name=f"bertkit-infer-{w}", daemon=True) for w in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    torch.set_num_threads(outer)  # new threads inherit the process-wide count: restore it
    if state["error"] is not None:
        raise state["error"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, T, H] token vectors -> [B, H] sentence vectors, padding excluded."""
    hidden = hidden.float()
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    if how == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return hidden.masked_fill(m == 0, float("-inf")).amax(1)


def _base(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "base_model", model)


def _layer_list(layers: int | Sequence[int], num_layers: int) -> list[int]:
    chosen = [layers] if isinstance(layers, int) else list(layers)
    if not chosen:
        raise BertkitError("layers must name at least one layer")
    for layer in chosen:
        if not -(num_layers + 1) <= layer <= num_layers:
            raise BertkitError(
                f"layer {layer} does not exist: hidden states are 0 (embeddings) .. {num_layers} (or -1 for the last)"
            )
    return chosen


# ---------------------------------------------------------------------- public functions
def embed(
    texts: Sequence[str] | str,
    model: Any = None,
    tokenizer: Any = None,
    pooling: str = "mean",
    layers: int | Sequence[int] = -1,
    normalize: bool = False,
    batch_size: int = 32,
    dtype: Any = None,
    max_length: int | None = None,
    combine: str = "concat",
    backend: str = "torch",
) -> torch.Tensor:
    """Sentence vectors [N, H] (float32) in input order; one text gives [H].

    backend: "torch", or "onnx" for a folder made by `bertkit export onnx` (run by onnxruntime).

    pooling: "mean" over real tokens (what sentence-embedding models such as MiniLM are trained
    for), "cls" (the [CLS] vector) or "max". layers: -1 (last), or several hidden states (0 is
    the embedding output) pooled each and concatenated (combine="concat") or averaged ("mean").
    """
    if pooling not in POOLINGS:
        raise BertkitError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
    if combine not in ("concat", "mean"):
        raise BertkitError(f"combine {combine!r} is not 'concat' or 'mean'")
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    model, tokenizer = load_model(model, tokenizer, backend=backend, dtype=dtype)
    config = _base(model).config
    chosen = _layer_list(layers, config.num_hidden_layers)
    all_layers = chosen not in ([-1], [config.num_hidden_layers])
    width = config.hidden_size * (len(chosen) if combine == "concat" else 1)
    out = torch.empty(len(texts), width)
    if texts:
        encoded = tokenize(tokenizer, texts, max_length or config.max_position_embeddings)
        base = prepare(_base(model), dtype, _calibration(encoded, dtype))

        def consume(idx, result, mask):
            if all_layers:
                pooled = [pool(result.hidden_states[layer], mask, pooling) for layer in chosen]
                out[idx] = (torch.cat(pooled, -1) if combine == "concat" else torch.stack(pooled).mean(0)).cpu()
            else:
                out[idx] = pool(result.last_hidden_state, mask, pooling).cpu()

        for_each_batch(base, encoded, batch_size, consume, output_hidden_states=all_layers)
    if normalize:
        out = F.normalize(out, dim=-1)
    return out[0] if single else out


@dataclass
class TokenEmbeddings:
    """One text's contextual vectors: per word piece (with [CLS]/[SEP]) and per word (pieces averaged)."""

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character span of each token in `text` ((0, 0) for specials)
    vectors: torch.Tensor  # [T, H]
    words: list[str]  # each word as it appears in `text`
    word_offsets: list[tuple[int, int]]
    word_vectors: torch.Tensor  # [W, H]

    def word_vector(self, word: str, occurrence: int = 0) -> torch.Tensor:
        """The vector of `word` (case-insensitive), e.g. "python" in "He got bit by Python"."""
        hits = [i for i, w in enumerate(self.words) if w.lower() == word.lower()]
        if len(hits) <= occurrence:
            raise BertkitError(f"word {word!r} occurs {len(hits)} time(s) in {self.text!r}")
        return self.word_vectors[hits[occurrence]]


def token_embeddings(
    texts: Sequence[str] | str,
    model: Any = None,
    tokenizer: Any = None,
    layers: int | Sequence[int] = -1,
    batch_size: int = 32,
    dtype: Any = None,
    max_length: int | None = None,
    combine: str = "concat",
) -> list[TokenEmbeddings] | TokenEmbeddings:
    """Per-token and per-word contextual vectors for each text (one text gives one object)."""
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    model, tokenizer = load_model(model, tokenizer)
    config = _base(model).config
    chosen = _layer_list(layers, config.num_hidden_layers)
    all_layers = chosen not in ([-1], [config.num_hidden_layers])
    results: list[TokenEmbeddings | None] = [None] * len(texts)
    if not texts:
        return results
    encoded = tokenize(tokenizer, texts, max_length or config.max_position_embeddings, offsets=True)
    base = prepare(_base(model), dtype, _calibration(encoded, dtype))

    def consume(idx, result, mask):
        if all_layers:
            states = [result.hidden_states[layer].float() for layer in chosen]
            hidden = torch.cat(states, -1) if combine == "concat" else torch.stack(states).mean(0)
        else:
            hidden = result.last_hidden_state.float()
        for row, i in enumerate(idx):
            enc = encoded.encodings[i]
            results[i] = _per_word(texts[i], enc, hidden[row, : len(enc.ids)].cpu().clone())

    for_each_batch(base, encoded, batch_size, consume, output_hidden_states=all_layers)
    return results[0] if single else results


def _per_word(text: str, enc: Any, vectors: torch.Tensor) -> TokenEmbeddings:
    groups: dict[int, list[int]] = {}
    for t, word in enumerate(enc.word_ids):
        if word is not None and not enc.special_tokens_mask[t]:
            groups.setdefault(word, []).append(t)
    words, spans, rows = [], [], []
    for word in sorted(groups):
        pieces = groups[word]
        start, end = enc.offsets[pieces[0]][0], enc.offsets[pieces[-1]][1]
        words.append(text[start:end])
        spans.append((start, end))
        rows.append(vectors[pieces].mean(0))
    word_vectors = torch.stack(rows) if rows else vectors.new_zeros(0, vectors.shape[-1])
    return TokenEmbeddings(
        text=text,
        tokens=list(enc.tokens),
        offsets=[tuple(o) for o in enc.offsets],
        vectors=vectors,
        words=words,
        word_offsets=spans,
        word_vectors=word_vectors,
    )


def fill_mask(
    texts: Sequence[str] | str,
    model: Any = None,
    tokenizer: Any = None,
    top_k: int = 5,
    batch_size: int = 32,
    dtype: Any = None,
) -> list:
    """The top_k words for each [MASK] with their probabilities, best first.

    One [MASK] gives a list of {"token", "token_str", "score", "sequence"}; several give one such
    list per mask. Only the [MASK] rows go through the vocabulary-sized decoder.
    """
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    model, tokenizer = load_model(model, tokenizer, head="BertForMaskedLM")
    info = getattr(model, "loading_info", None)
    if info is not None and any(k.startswith("cls.predictions") for k in info.newly_initialized):
        raise BertkitError(
            f"{getattr(model, 'name_or_path', 'model')} has no masked-LM head weights "
            "(cls.predictions.*); fill-mask needs a model pretrained with MLM"
        )
    from bertkit.export.runner import OnnxModel, load_onnx

    if isinstance(model, OnnxModel):
        load_onnx(model, "BertForMaskedLM")  # refuses a graph exported for another task
    elif not hasattr(model, "cls") or not hasattr(model.cls, "predictions"):
        raise BertkitError("fill-mask needs a BertForMaskedLM or BertForPreTraining model")
    if top_k < 1:
        raise BertkitError(f"top_k must be >= 1, got {top_k}")
    mask_id = tokenizer.token_to_id("[MASK]")
    if mask_id is None:
        raise BertkitError("the tokenizer has no [MASK] token")
    encoded = tokenize(tokenizer, texts, model.config.max_position_embeddings)
    for i, ids in enumerate(encoded["input_ids"]):
        if mask_id not in ids:
            raise BertkitError(f"fill-mask: text {i} has no [MASK] {texts[i]!r} (or it was truncated away)")
    runner = prepare(model, dtype, _calibration(encoded, dtype))
    results: list = [None] * len(texts)
    ids_all = encoded["input_ids"]

    def consume(idx, out, mask):
        logits = out.logits if hasattr(out, "logits") else out.prediction_logits  # [N masks, V]
        probs = logits.float().softmax(-1)
        top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
        k = 0
        for i in idx:
            per_mask = []
            for position in [p for p, t in enumerate(ids_all[i]) if t == mask_id]:
                candidates = []
                for score, token in zip(top.values[k].tolist(), top.indices[k].tolist()):
                    filled = list(ids_all[i])
                    filled[position] = token
                    candidates.append(
                        {
                            "token": token,
                            "token_str": tokenizer.id_to_token(token),
                            "score": score,
                            "sequence": tokenizer.decode(filled),
                        }
                    )
                per_mask.append(candidates)
                k += 1
            results[i] = per_mask[0] if len(per_mask) == 1 else per_mask

    for_each_batch(runner, encoded, batch_size, consume, mask_token_id=mask_id)
    return results[0] if single else results
