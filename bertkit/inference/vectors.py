"""Texts -> sentence vectors (`embed`) and per-token / per-word contextual vectors (`token_embeddings`).

With no pooling / normalize / max_seq_len arguments, `embed` follows the model folder's own
recipe (bertkit.sentence_folder): for a sentence-transformers folder such as
all-MiniLM-L6-v2 that is mean pooling, 256 tokens and unit length, so the vectors equal
`SentenceTransformer(folder).encode(texts)`; a bare BERT folder gets mean pooling over up to its
512 positions. Explicit arguments override the folder.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bertkit.errors import BertkitError
from bertkit.inference.batches import calibration_batches, for_each_batch, progress_callback, tokenize
from bertkit.inference.runtime import dtype_kind, load, model_folder, prepare
from bertkit.inference.sentence import check_pooling, pool
from bertkit.sentence_folder import POOLINGS, SentenceConfig, sentence_config

__all__ = ["POOLINGS", "TokenEmbeddings", "embed", "token_embeddings"]

Progress = bool | Callable[[int], None]


def base_model(model: torch.nn.Module) -> Any:
    """The encoder inside a model with a head (or the model itself)."""
    return getattr(model, "base_model", model)


def layer_list(layers: int | Sequence[int], num_layers: int) -> list[int]:
    chosen = [layers] if isinstance(layers, int) else list(layers)
    if not chosen:
        raise BertkitError("layers must name at least one layer")
    for layer in chosen:
        if not -(num_layers + 1) <= layer <= num_layers:
            raise BertkitError(
                f"layer {layer} does not exist: hidden states are 0 (embeddings) .. {num_layers} (or -1 for the last)"
            )
    return chosen


def seq_len_limit(config: Any, max_seq_len: int | None, max_length: int | None, folder_limit: int | None) -> int:
    """Tokens per text: the argument, else the folder's max_seq_length, never over the positions."""
    if max_length is not None:
        warnings.warn("max_length= is renamed max_seq_len=", DeprecationWarning, stacklevel=3)
        max_seq_len = max_seq_len or max_length
    positions = int(config.max_position_embeddings)
    wanted = max_seq_len or folder_limit or positions
    if wanted < 2:
        raise BertkitError(f"max_seq_len must be >= 2 ([CLS] and [SEP]), got {wanted}")
    return min(wanted, positions)


# ---------------------------------------------------------------------------------------- embed
def embed(
    texts: Sequence[str] | str,
    model: Any = None,
    tokenizer: Any = None,
    pooling: str | Sequence[str] | None = None,
    layers: int | Sequence[int] = -1,
    normalize: bool | None = None,
    batch_size: int = 32,
    dtype: Any = None,
    max_seq_len: int | None = None,
    combine: str = "concat",
    device: Any = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
    progress: Progress = False,
    max_length: int | None = None,
    backend: str = "torch",
    **hub: Any,
) -> torch.Tensor:
    """Sentence vectors [N, H] (float32, on the CPU) in input order; one text gives [H].

    pooling: one of POOLINGS or several (concatenated); default: the folder's (mean for a bare
    BERT). normalize: unit length (default: whether the folder has a Normalize module).
    layers: -1 (last), or several hidden states (0 is the embedding output) pooled each and
    concatenated (combine="concat") or averaged ("mean"). device: default where a loaded model
    is, else "auto". dtype: float32, bfloat16, float16 or "int8" (bertkit.inference.runtime).
    prompt_name / prompt: text put before each input (the folder's named prompts, as in
    sentence-transformers). progress: True for a bar on stderr, or a callable given each
    batch's size. max_length: the old name of max_seq_len. backend: "torch", or "onnx" for a
    folder made by `bertkit export onnx` (run by onnxruntime on the CPU). hub: revision, token,
    cache_dir, local_files_only for a hub name (bertkit.hub.resolve_folder).
    """
    if combine not in ("concat", "mean"):
        raise BertkitError(f"combine {combine!r} is not 'concat' or 'mean'")
    single = isinstance(texts, str)
    items = [texts] if isinstance(texts, str) else list(texts)
    model, tokenizer = load(model, tokenizer, backend=backend, dtype=dtype, device=device, **hub)
    recipe = sentence_config(model_folder(model))
    modes = recipe.pooling if pooling is None else check_pooling(pooling)
    config = base_model(model).config
    chosen = layer_list(layers, config.num_hidden_layers)
    limit = seq_len_limit(config, max_seq_len, max_length, recipe.max_seq_len)
    width = config.hidden_size * len(modes) * (len(chosen) if combine == "concat" else 1)
    out = torch.empty(len(items), width)
    if items:
        start = recipe.prompt_for(prompt_name, prompt)
        inputs = [(start + t).lower() if recipe.do_lower_case else start + t for t in _strings(items)]
        skip = _prompt_tokens(tokenizer, start, limit) if start and not recipe.include_prompt else 0
        encoded = tokenize(tokenizer, inputs, limit)
        kind = dtype_kind(dtype)
        runner = prepare(base_model(model), kind, calibration_batches(encoded) if kind == "int8" else None, device)
        every_layer = chosen not in ([-1], [config.num_hidden_layers])

        def consume(idx: list[int], result: Any, mask: torch.Tensor) -> None:
            if not every_layer:
                out[idx] = pool(result.last_hidden_state, mask, modes, skip).cpu()
                return
            pooled = [pool(result.hidden_states[layer], mask, modes, skip) for layer in chosen]
            out[idx] = (torch.cat(pooled, -1) if combine == "concat" else torch.stack(pooled).mean(0)).cpu()

        with progress_callback(progress, len(items), "embedding") as step:
            # skip_padding: the encoder runs on the real tokens only; pooling never reads the padding
            for_each_batch(
                runner, encoded, batch_size, consume, progress=step, output_hidden_states=every_layer, skip_padding=True
            )
    if recipe.normalize if normalize is None else normalize:
        out = F.normalize(out, dim=-1)
    return out[0] if single else out


def _strings(texts: list[Any]) -> list[str]:
    if not all(isinstance(t, str) for t in texts):
        raise BertkitError("texts must be a list of strings")
    return texts


def _prompt_tokens(tokenizer: Any, prompt: str, limit: int) -> int:
    """Tokens the prompt takes at the start of every input: [CLS] + its pieces (not its [SEP])."""
    return min(len(tokenize(tokenizer, [prompt], limit)["input_ids"][0]) - 1, limit)


def folder_recipe(model: Any) -> SentenceConfig:
    """The SentenceConfig of a model folder or of the folder a loaded model came from."""
    return sentence_config(model_folder(model))


# ---------------------------------------------------------------------------------------- tokens
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
    max_seq_len: int | None = None,
    combine: str = "concat",
    device: Any = None,
    max_length: int | None = None,
    **hub: Any,
) -> Any:
    """Per-token and per-word contextual vectors: a TokenEmbeddings per text (one text gives one).

    max_seq_len defaults to the folder's max_seq_length (sentence-transformers) or the model's
    limit; device, dtype and the hub options as in `embed`.
    """
    if combine not in ("concat", "mean"):
        raise BertkitError(f"combine {combine!r} is not 'concat' or 'mean'")
    single = isinstance(texts, str)
    items = _strings([texts] if isinstance(texts, str) else list(texts))
    model, tokenizer = load(model, tokenizer, **hub)
    config = base_model(model).config
    chosen = layer_list(layers, config.num_hidden_layers)
    every_layer = chosen not in ([-1], [config.num_hidden_layers])
    results: list[Any] = [None] * len(items)
    if not items:
        return results
    limit = seq_len_limit(config, max_seq_len, max_length, folder_recipe(model).max_seq_len)
    encoded = tokenize(tokenizer, items, limit, offsets=True)
    kind = dtype_kind(dtype)
    runner = prepare(base_model(model), kind, calibration_batches(encoded) if kind == "int8" else None, device)

    def consume(idx: list[int], result: Any, mask: torch.Tensor) -> None:
        if every_layer:
            states = [result.hidden_states[layer].float() for layer in chosen]
            hidden = torch.cat(states, -1) if combine == "concat" else torch.stack(states).mean(0)
        else:
            hidden = result.last_hidden_state.float()
        for row, i in enumerate(idx):
            enc = encoded.encodings[i]
            results[i] = _per_word(items[i], enc, hidden[row, : len(enc.ids)].cpu().clone())

    for_each_batch(runner, encoded, batch_size, consume, output_hidden_states=every_layer, skip_padding=True)
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
        offsets=[(int(o[0]), int(o[1])) for o in enc.offsets],
        vectors=vectors,
        words=words,
        word_offsets=spans,
        word_vectors=word_vectors,
    )
