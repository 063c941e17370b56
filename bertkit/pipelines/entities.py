"""Hugging Face's token-classification output, computed as transformers defines it.

aggregation_strategy (transformers' TokenClassificationPipeline):
- "none": one dict per word piece not tagged O: {"entity", "score", "index", "word", "start", "end"};
- "simple": neighbouring pieces with the same entity type (B- starts a new one) merged into
  {"entity_group", "score" (mean), "word", "start", "end"};
- "first" / "average" / "max": pieces first fused into words (a piece continues a word when it is
  a "##" piece), the word's label from its first piece, its averaged scores, or its most confident
  piece; then grouped as in "simple".
Groups tagged O are dropped. A text longer than the model's positions is read through
overlapping windows (transformers truncates it), each piece scored in the window where it has
the most context on both sides, so `index` counts pieces of the whole text ([CLS] is 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.tasks.features import forward_batches, softmax

AGGREGATIONS = ("none", "simple", "first", "average", "max")


@dataclass
class Piece:
    index: int  # position in the whole text's encoding ([CLS] = 0)
    word: str  # the piece as the vocabulary spells it ("##s"); the text itself for [UNK]
    start: int
    end: int
    scores: np.ndarray  # [labels] probabilities
    is_subword: bool


def token_entities(pipe: Any, texts: list[str], strategy: str, batch_size: int) -> list[list[dict[str, Any]]]:
    """Per text, the entities for `strategy` (pipe: a TokenClassificationPipeline)."""
    pieces = text_pieces(pipe, texts, batch_size)
    id2label = {int(k): v for k, v in (pipe.model.config.id2label or {}).items()}
    decode = pipe.tokenizer.decoder.decode  # transformers' convert_tokens_to_string
    return [aggregate(p, id2label, strategy, decode) for p in pieces]


def text_pieces(pipe: Any, texts: list[str], batch_size: int) -> list[list[Piece]]:
    """Every non-special piece of each text with its label probabilities."""
    tok = pipe.tokenizer
    full = tok(texts, truncation=False, padding=False, return_offsets_mapping=True, return_special_tokens_mask=True)
    windows = tok(
        texts,
        truncation=True,
        max_length=pipe.max_seq_len,
        stride=pipe.window_stride(),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        padding=False,
    )
    features = [
        {"input_ids": list(ids), "token_type_ids": list(types)}
        for ids, types in zip(windows["input_ids"], windows["token_type_ids"])
    ]
    out = forward_batches(pipe.runner(features), features, batch_size, per_token=True)
    best: list[dict[int, tuple[float, np.ndarray]]] = [{} for _ in texts]  # text -> index -> (context, probs)
    for w, sample in enumerate(windows["overflow_to_sample_mapping"]):
        first = _window_start(full["offset_mapping"][sample], full["special_tokens_mask"][sample], windows, w)
        probs, special = softmax(out[w][0]), windows["special_tokens_mask"][w]
        real = [t for t in range(len(special)) if not special[t]]
        for k, t in enumerate(real):
            context = min(k, len(real) - 1 - k) + 0.01 * len(real)
            index = first + k
            if index not in best[sample] or context > best[sample][index][0]:
                best[sample][index] = (context, probs[t])
    unk = getattr(tok.model, "unk_id", None)
    word_aware = bool(getattr(tok.model, "prefix", None))
    result = []
    for i, text in enumerate(texts):
        ids, offsets, special = full["input_ids"][i], full["offset_mapping"][i], full["special_tokens_mask"][i]
        pieces = []
        for t, (token_id, (start, end)) in enumerate(zip(ids, offsets)):
            if special[t] or t not in best[i]:
                continue
            word, ref = tok.id_to_token(token_id), text[start:end]
            is_subword = len(word) != len(ref) if word_aware else start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == unk:
                word, is_subword = ref, False
            pieces.append(Piece(t, word, start, end, best[i][t][1], is_subword))
        result.append(pieces)
    return result


def _window_start(full_offsets: Any, full_special: Any, windows: Any, w: int) -> int:
    """Index in the whole text's encoding of window w's first real piece (found by its offsets)."""
    special = windows["special_tokens_mask"][w]
    first = next((t for t in range(len(special)) if not special[t]), None)
    if first is None:
        return 0
    target = tuple(windows["offset_mapping"][w][first])
    for t, offset in enumerate(full_offsets):
        if not full_special[t] and tuple(offset) == target:
            return t
    return 0


# ------------------------------------------------------------------------------------ aggregation
def aggregate(pieces: list[Piece], id2label: dict[int, str], strategy: str, decode: Any) -> list[dict[str, Any]]:
    if strategy in ("none", "simple"):
        entities = [_piece_entity(p, id2label) for p in pieces]
        if strategy == "none":
            return [e for e in entities if e["entity"] != "O"]
    else:
        entities = [_word_entity(group, id2label, strategy, decode) for group in _words(pieces)]
    groups = [_group(run, decode) for run in _runs(entities)]
    return [g for g in groups if g["entity_group"] != "O"]


def _piece_entity(p: Piece, id2label: dict[int, str]) -> dict[str, Any]:
    best = int(p.scores.argmax())
    return {
        "entity": id2label[best],
        "score": float(p.scores[best]),
        "index": p.index,
        "word": p.word,
        "start": p.start,
        "end": p.end,
    }


def _words(pieces: list[Piece]) -> list[list[Piece]]:
    words: list[list[Piece]] = []
    for p in pieces:
        if words and p.is_subword:
            words[-1].append(p)
        else:
            words.append([p])
    return words


def _word_entity(group: list[Piece], id2label: dict[int, str], strategy: str, decode: Any) -> dict[str, Any]:
    if strategy == "first":
        scores = group[0].scores
    elif strategy == "max":
        scores = max(group, key=lambda p: float(p.scores.max())).scores
    else:  # average
        scores = np.nanmean(np.stack([p.scores for p in group]), axis=0)
    best = int(scores.argmax())
    return {
        "entity": id2label[best],
        "score": float(scores[best]),
        "word": decode([p.word for p in group]),
        "start": group[0].start,
        "end": group[-1].end,
    }


def _tag(label: str) -> tuple[str, str]:
    """("B" | "I", type); a label without a B-/I- prefix continues like I-."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _runs(entities: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Neighbours of the same type, a B- starting a new run."""
    runs: list[list[dict[str, Any]]] = []
    for e in entities:
        bi, kind = _tag(e["entity"])
        if runs and bi != "B" and _tag(runs[-1][-1]["entity"])[1] == kind:
            runs[-1].append(e)
        else:
            runs.append([e])
    return runs


def _group(run: list[dict[str, Any]], decode: Any) -> dict[str, Any]:
    return {
        "entity_group": run[0]["entity"].split("-", 1)[-1],
        "score": float(np.nanmean([e["score"] for e in run])),
        "word": decode([e["word"] for e in run]),
        "start": run[0]["start"],
        "end": run[-1]["end"],
    }
