"""Named-entity recognition: a classifier on every token, read back as entities over words.

Training labels sit on the first piece of each word; the other pieces (and [CLS]/[SEP]/[PAD])
get -100 so the loss ignores them. At prediction time each word takes the tag of its first
piece, tags are decoded into entities the way conlleval does, and entity-level precision,
recall and F1 are counted as conlleval counts them (an entity is right only when its type and
both boundaries are).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

IGNORE = -100  # label id the loss skips (cross-entropy's ignore_index)


# ----------------------------------------------------------------------------- words <-> pieces

def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words -> one space-joined text and each word's (start, end) character span in it."""
    spans, pos = [], 0
    for word in words:
        spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    return " ".join(words), spans


def first_piece_words(offsets: Sequence[tuple[int, int] | None], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each token, the index of the word it starts, or None (later pieces, specials, padding).

    A token is a word's first piece when it begins where the word begins; this holds however the
    tokenizer splits a word ("U.S." -> u . s .) and in windows that start inside a word.
    """
    starts = [s for s, _ in spans]
    out: list[int | None] = []
    for off in offsets:
        if off is None or off[0] == off[1]:  # specials and padding have empty offsets
            out.append(None)
            continue
        w = bisect_right(starts, off[0]) - 1
        out.append(w if w >= 0 and spans[w][0] == off[0] and off[0] < spans[w][1] else None)
    return out


def align_labels(word_of_token: Sequence[int | None], word_label_ids: Sequence[int]) -> list[int]:
    """Token label ids: the word's label on its first piece, IGNORE elsewhere."""
    return [IGNORE if w is None else word_label_ids[w] for w in word_of_token]


# ----------------------------------------------------------------------------- tags -> entities

def _split(tag: str) -> tuple[str, str]:
    prefix, dash, etype = tag.partition("-")
    return (prefix, etype) if dash else (tag, "")


def _chunk_ends(prev: str, tag: str, prev_type: str, etype: str) -> bool:
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != etype


def _chunk_starts(prev: str, tag: str, prev_type: str, etype: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != etype


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """IOB/IOBES tags -> entities (type, first word, last word + 1), following conlleval.

    An I- tag after O or after another type starts an entity, as conlleval reads it.
    """
    entities = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        cur, etype = _split(tag)
        if _chunk_ends(prev, cur, prev_type, etype):
            entities.append((prev_type, begin, i))
        if _chunk_starts(prev, cur, prev_type, etype):
            begin = i
        prev, prev_type = cur, etype
    return entities


@dataclass
class EntityScores:
    precision: float
    recall: float
    f1: float
    per_type: dict[str, dict[str, float]]

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "per_type": self.per_type}


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> EntityScores:
    """Entity-level precision/recall/F1 over sentences of tags, counted as conlleval does."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    counts: dict[str, list[int]] = {}  # type -> [correct, predicted, gold]
    for g_tags, p_tags in zip(gold, pred):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"a sentence has {len(g_tags)} gold tags but {len(p_tags)} predicted")
        g, p = set(get_entities(g_tags)), set(get_entities(p_tags))
        for ent in g | p:
            c = counts.setdefault(ent[0], [0, 0, 0])
            c[0] += ent in g and ent in p
            c[1] += ent in p
            c[2] += ent in g
    per_type = {t: _prf(*c) for t, c in sorted(counts.items())}
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    overall = _prf(*total)
    return EntityScores(overall["precision"], overall["recall"], overall["f1"], per_type)


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": gold}


# ----------------------------------------------------------------------------- entities in text

def word_entities(
    text: str,
    spans: Sequence[tuple[int, int]],
    tags: Sequence[str],
    scores: Sequence[float],
) -> list[dict]:
    """Decode per-word tags into entities with type, text, character offsets and mean score."""
    out = []
    for etype, first, last in get_entities(tags):
        start, end = spans[first][0], spans[last - 1][1]
        out.append({
            "type": etype,
            "text": text[start:end],
            "start": start,
            "end": end,
            "score": float(sum(scores[first:last]) / (last - first)),
            "words": (first, last),
        })
    return out
