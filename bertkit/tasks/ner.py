"""Named-entity recognition: a classifier on every token, read back as entities over words.

Training labels sit on the first piece of each word; the other pieces (and [CLS]/[SEP]/[PAD])
get -100 so the loss ignores them. At prediction time each word takes the tag of its first
piece, tags are decoded into entities the way conlleval does, and entity-level precision,
recall and F1 are counted as conlleval counts them (an entity is right only when its type and
both boundaries are).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.constants import IGNORE_INDEX
from bertkit.tasks.examples import DataSource, TokenExample
from bertkit.tasks.features import softmax
from bertkit.tasks.readers import check_labels, label_list, read_task_data

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
    """Token label ids: the word's label on its first piece, IGNORE_INDEX elsewhere."""
    return [IGNORE_INDEX if w is None else word_label_ids[w] for w in word_of_token]


# CoNLL-like words for raw text: abbreviations (U.S.), words with inner hyphens, clitics ('s)
# and single punctuation marks, so prediction sees words shaped like the training data's.
_WORD = re.compile(r"(?:\w\.){2,}|\w+(?:-\w+)*|'\w+|[^\w\s]")


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of raw text, split roughly as CoNLL-2003 is tokenized."""
    return [m.span() for m in _WORD.finditer(text)]


@dataclass
class NERWindow:
    """Token ids of one window of one sentence, and which word each token starts (if any)."""

    example: int
    input_ids: list[int]
    token_type_ids: list[int]
    words: list[int | None]
    labels: list[int] | None = None

    def feature(self) -> dict:
        f = {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids}
        if self.labels is not None:
            f["labels"] = self.labels
        return f


def make_windows(
    texts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    tokenizer,
    max_length: int,
    stride: int | None = None,
    word_labels: Sequence[Sequence[int]] | None = None,
) -> list[NERWindow]:
    """Tokenize sentences and mark first pieces; with `stride`, long ones become overlapping windows.

    Training truncates (stride None), as the reference recipe does; prediction passes a stride so
    that every word of a long text gets a tag.
    """
    kwargs = dict(truncation=True, max_length=max_length, return_offsets_mapping=True, padding=False)
    if stride is not None:
        kwargs.update(stride=stride, return_overflowing_tokens=True)
    enc = tokenizer(list(texts), **kwargs)
    samples = enc["overflow_to_sample_mapping"] if stride is not None else range(len(texts))
    windows = []
    for w, sample in enumerate(samples):
        sample = int(sample)
        words = first_piece_words([tuple(o) for o in enc["offset_mapping"][w]], spans[sample])
        labels = None if word_labels is None else align_labels(words, word_labels[sample])
        windows.append(NERWindow(sample, list(enc["input_ids"][w]), list(enc["token_type_ids"][w]), words, labels))
    return windows


def word_probabilities(
    windows: Sequence[NERWindow], probs: Sequence[np.ndarray], n_words: Sequence[int]
) -> list[np.ndarray]:
    """Per sentence, a [words, labels] array of tag probabilities read at each word's first piece.

    When windows overlap, a word takes the window where it has the most context on both sides.
    Words no window reaches (dropped by the normalizer, or cut by truncation) get all-zero rows.
    """
    num_labels = probs[0].shape[-1]
    out = [np.zeros((n, num_labels), dtype=np.float32) for n in n_words]
    best = [np.full(n, -1.0) for n in n_words]
    for window, p in zip(windows, probs):
        n = len(window.words)
        for t, w in enumerate(window.words):
            if w is None:
                continue
            context = min(t, n - 1 - t) + 0.01 * n
            if context > best[window.example][w]:
                best[window.example][w] = context
                out[window.example][w] = p[t]
    return out


def tags_from_probabilities(word_probs: np.ndarray, id2label: Mapping[int, str]) -> tuple[list[str], list[float]]:
    """Argmax tag and its probability per word; a word with no prediction is "O"."""
    tags, scores = [], []
    for row in word_probs:
        i = int(row.argmax())
        tags.append(id2label[i] if row.sum() > 0 else "O")
        scores.append(float(row[i]))
    return tags, scores


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
        out.append(
            {
                "type": etype,
                "text": text[start:end],
                "start": start,
                "end": end,
                "score": float(sum(scores[first:last]) / (last - first)),
                "words": (first, last),
            }
        )
    return out


class NERTask:
    """Token classification on CoNLL files (or JSONL / datasets words + tags) for the shared fine-tuning code."""

    name = "ner"
    head = "BertForTokenClassification"
    outputs = ("logits",)
    per_token = True
    metric = "f1"
    sentence_level = False

    def read(self, source: DataSource, require_labels: bool = True) -> list[TokenExample]:
        return read_task_data("ner", source, require_labels=require_labels)

    def labels(self, examples: Sequence[TokenExample], source: DataSource) -> list[str]:
        return label_list((t for ex in examples for t in ex.tags or []), source)

    def check(self, examples: Sequence[TokenExample], label2id: dict[str, int] | None, source: DataSource) -> None:
        if label2id is not None:
            check_labels(examples, label2id, source)

    def head_options(self, labels: list[str] | None) -> dict[str, Any]:
        labels = labels or []
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels))}

    def start_head(self, model: Any, examples: Sequence[TokenExample]) -> None:
        return None  # random weights, zero bias: Hugging Face's start

    def encode(
        self,
        examples: Sequence[TokenExample],
        tokenizer: Any,
        max_seq_len: int,
        stride: int,
        label2id: Mapping[str, int] | None = None,
        train: bool = False,
    ) -> tuple[list[dict[str, Any]], list[NERWindow]]:
        joined = [join_words(ex.words) for ex in examples]
        word_labels = None
        if label2id is not None and train:
            word_labels = [[label2id[t] for t in ex.tags or []] for ex in examples]
        windows = make_windows(
            [t for t, _ in joined],
            [s for _, s in joined],
            tokenizer,
            max_seq_len,
            stride=None if train else min(stride, max_seq_len // 2),
            word_labels=word_labels,
        )
        return [w.feature() for w in windows], windows

    def score(
        self,
        examples: Sequence[TokenExample],
        windows: Sequence[NERWindow],
        outputs: Sequence[tuple],
        label2id: Mapping[str, int] | None,
    ) -> dict[str, Any]:
        assert label2id is not None
        id2label = {i: label for label, i in label2id.items()}
        word_probs = word_probabilities(windows, [softmax(o[0]) for o in outputs], [len(ex.words) for ex in examples])
        pred = [tags_from_probabilities(p, id2label)[0] for p in word_probs]
        return entity_scores([ex.tags or [] for ex in examples], pred).as_dict()
