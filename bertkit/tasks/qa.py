"""Extractive question answering: [CLS] question [SEP] context [SEP] -> an answer span.

As the lecture puts it, the model learns a start vector S and an end vector E; token i starts the
answer with probability softmax_i(S·R_i) and ends it with softmax_i(E·R_i) (the QA head's two
logits per token). Contexts longer than the model's window are cut into overlapping windows
(`max_length` 384, `stride` 128 tokens of overlap) that keep each token's character offsets, so
the best valid span over all windows maps back to the original characters. Scored with the
official SQuAD v1.1 exact match and F1.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.errors import BertkitError
from bertkit.log import get_logger
from bertkit.tasks.examples import DataSource, QAExample
from bertkit.tasks.readers import read_task_data
from bertkit.tasks.settings import RECIPES

logger = get_logger(__name__)

MAX_LENGTH = RECIPES["qa"]["max_seq_len"]  # windows of the QA recipe, for callers without settings
DOC_STRIDE = RECIPES["qa"]["doc_stride"]
MAX_ANSWER_TOKENS = 30
N_BEST = 20


# ----------------------------------------------------------------------------- windows

MIN_CONTEXT = 64  # tokens of context a window must hold at the least, beside the question


def check_stride(max_seq_len: int, stride: int, flag: str = "--doc-stride") -> None:
    """One line when the stride leaves too little room for the context in each window."""
    if not 0 < stride <= max_seq_len - MIN_CONTEXT:
        raise BertkitError(
            f"{flag} {stride} must be positive and leave room for the question in windows of {max_seq_len} "
            f"tokens (at most {max_seq_len - MIN_CONTEXT}); lower {flag} or raise --max-seq-len"
        )


def fitting_questions(examples: Sequence[QAExample], tokenizer: Any, max_length: int, stride: int) -> list[int]:
    """Indexes of the examples whose question leaves room for more than `stride` context tokens.

    A longer question cannot be windowed (each window must move forward over the context); such
    questions are skipped with a warning naming how many, instead of aborting the whole run.
    """
    if not examples:
        return []
    lengths = [len(ids) for ids in tokenizer([ex.question.lstrip() for ex in examples], padding=False)["input_ids"]]
    room = [max_length - (n - 2) - 3 for n in lengths]  # [CLS] q [SEP] context [SEP]
    keep = [i for i, r in enumerate(room) if r > stride]
    if len(keep) < len(examples):
        worst = max(range(len(examples)), key=lambda i: lengths[i])
        logger.warning(
            f"skipped {len(examples) - len(keep)} of {len(examples)} questions too long for windows of "
            f"{max_length} tokens with stride {stride} (longest: {lengths[worst] - 2} tokens, id "
            f"{examples[worst].id}); they count as unanswered"
        )
    return keep


@dataclass
class QAWindow:
    """One window of one example: token ids plus, for context tokens, their character offsets."""

    example: int  # index of the QAExample it came from
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]  # None outside the context (question, specials)
    start_position: int = 0  # training target; 0 ([CLS]) when the answer is not in this window
    end_position: int = 0


def make_windows(
    examples: Sequence[QAExample],
    tokenizer,
    max_length: int = MAX_LENGTH,
    stride: int = DOC_STRIDE,
    with_targets: bool = False,
) -> list[QAWindow]:
    """Tokenize question + context into overlapping windows over the context.

    With `with_targets`, each window gets start/end token positions of the first reference
    answer, or [CLS] (position 0) when the answer is not wholly inside that window.
    """
    if max_length - stride < 8:
        raise ValueError(f"stride {stride} leaves too little room in windows of {max_length} tokens")
    enc = tokenizer(
        [ex.question.lstrip() for ex in examples],
        text_pair=[ex.context for ex in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    windows = []
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        ids, types, offs = enc["input_ids"][w], enc["token_type_ids"][w], enc["offset_mapping"][w]
        offsets = [tuple(o) if t == 1 and o[1] > o[0] else None for t, o in zip(types, offs)]
        window = QAWindow(int(sample), list(ids), list(types), offsets)
        if with_targets:
            ex = examples[window.example]
            if ex.answers:
                text, start = ex.answers[0]
                window.start_position, window.end_position = _target(offsets, start, start + len(text))
        windows.append(window)
    return windows


def _target(offsets: Sequence[tuple[int, int] | None], start_char: int, end_char: int) -> tuple[int, int]:
    """Token positions of the answer's first and last pieces, or (0, 0) when not in the window."""
    spans = {i: o for i, o in enumerate(offsets) if o is not None}
    context = list(spans)
    if not context or spans[context[0]][0] > start_char or spans[context[-1]][1] < end_char:
        return 0, 0
    start = max(i for i in context if spans[i][0] <= start_char)
    end = min(i for i in context if spans[i][1] >= end_char)
    return start, end


# ----------------------------------------------------------------------------- spans


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context: np.ndarray,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    n_best: int = N_BEST,
) -> list[tuple[float, int, int]]:
    """The n best valid spans of one window as (start logit + end logit, start, end), best first.

    Valid: both ends inside the context, start <= end, at most `max_answer_tokens` tokens. The
    whole band of valid pairs is scored, so the best valid span is exact, not a top-k guess.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(context, dtype=bool))
    if idx.size == 0:
        return []
    s, e = start_logits[idx], end_logits[idx]
    scores = s[:, None] + e[None, :]  # [C, C]: start at row, end at column
    gap = idx[None, :] - idx[:, None]  # token distance end - start
    scores[(gap < 0) | (gap >= max_answer_tokens)] = -np.inf
    flat = scores.ravel()
    k = min(n_best, int(np.isfinite(flat).sum()))
    top = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
    top = top[np.argsort(-flat[top], kind="stable")][:k]
    n = len(idx)
    return [(float(flat[t]), int(idx[t // n]), int(idx[t % n])) for t in top]


def _log_softmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.where(mask, x.astype(np.float64), -np.inf)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def decode_answers(
    examples: Sequence[QAExample],
    windows: Sequence[QAWindow],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    n_best: int = N_BEST,
) -> list[list[dict]]:
    """Per example, its n-best answers over all windows: text, character start/end, score.

    Candidates are ranked by start + end logit across windows (as the SQuAD recipes do); the
    score shown is the span's probability in its window, P_start(i) * P_end(j).
    """
    per_example: list[list[dict]] = [[] for _ in examples]
    for w, window in enumerate(windows):
        s, e = np.asarray(start_logits[w])[: len(window.offsets)], np.asarray(end_logits[w])[: len(window.offsets)]
        mask = np.array([o is not None for o in window.offsets])
        spans = best_spans(s, e, mask, max_answer_tokens, n_best)
        if not spans:
            continue
        logp_s, logp_e = _log_softmax(s, mask), _log_softmax(e, mask)
        context = examples[window.example].context
        for logit, i, j in spans:
            first, last = window.offsets[i], window.offsets[j]
            assert first is not None and last is not None  # best_spans keeps context tokens only
            start, end = first[0], last[1]
            per_example[window.example].append(
                {
                    "text": context[start:end],
                    "start": start,
                    "end": end,
                    "score": float(np.exp(logp_s[i] + logp_e[j])),
                    "logit": logit,
                }
            )
    out = []
    for cands in per_example:
        cands.sort(key=lambda c: -c["logit"])
        seen, best = set(), []
        for c in cands:
            if (c["start"], c["end"]) not in seen:
                seen.add((c["start"], c["end"]))
                best.append(c)
            if len(best) == n_best:
                break
        out.append(best or [{"text": "", "start": 0, "end": 0, "score": 0.0, "logit": float("-inf")}])
    return out


# ----------------------------------------------------------------------------- SQuAD v1.1 metric


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, drop punctuation and a/an/the, squeeze spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCT = set(string.punctuation)


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Mapping[str, str], references: Iterable[QAExample]) -> dict[str, float]:
    """Exact match and F1 in percent, each the max over a question's references, averaged.

    A question with no prediction scores 0, as in the official script.
    """
    em = f = 0.0
    total = 0
    for ex in references:
        total += 1
        if ex.id not in predictions:
            continue
        truths = [text for text, _ in ex.answers]
        pred = predictions[ex.id]
        em += max(exact_match(pred, t) for t in truths)
        f += max(f1(pred, t) for t in truths)
    if total == 0:
        raise ValueError("no reference questions to score")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f / total}


class QATask:
    """Extractive QA on SQuAD v1.1 JSON (or a `datasets` SQuAD table) for the shared fine-tuning code."""

    name = "qa"
    head = "BertForQuestionAnswering"
    outputs = ("start_logits", "end_logits")
    per_token = True
    metric = "f1"
    sentence_level = False

    def read(self, source: DataSource, require_labels: bool = True) -> list[QAExample]:
        return read_task_data("qa", source, require_labels=require_labels)

    def labels(self, examples: Sequence[QAExample], source: DataSource) -> None:
        return None  # spans, not classes

    def check(self, examples: Sequence[QAExample], label2id: Any, source: DataSource) -> None:
        return None  # every answer was checked against its context by the reader

    def head_options(self, labels: list[str] | None) -> dict[str, Any]:
        return {}

    def start_head(self, model: Any, examples: Sequence[QAExample]) -> None:
        return None  # random weights, zero bias: Hugging Face's start

    def encode(
        self,
        examples: Sequence[QAExample],
        tokenizer: Any,
        max_seq_len: int,
        stride: int,
        label2id: Any = None,
        train: bool = False,
    ) -> tuple[list[dict[str, Any]], list[QAWindow]]:
        check_stride(max_seq_len, stride)
        keep = fitting_questions(examples, tokenizer, max_seq_len, stride)
        windows = make_windows([examples[i] for i in keep], tokenizer, max_seq_len, stride, with_targets=train)
        for w in windows:
            w.example = keep[w.example]  # back to the index in `examples`
        features = []
        for w in windows:
            f: dict[str, Any] = {"input_ids": w.input_ids, "token_type_ids": w.token_type_ids}
            if train:
                f["start_positions"], f["end_positions"] = w.start_position, w.end_position
            features.append(f)
        return features, windows

    def score(
        self, examples: Sequence[QAExample], windows: Sequence[QAWindow], outputs: Sequence[tuple], label2id: Any = None
    ) -> dict[str, float]:
        answers = decode_answers(examples, windows, [o[0] for o in outputs], [o[1] for o in outputs])
        return squad_scores({ex.id: a[0]["text"] for ex, a in zip(examples, answers)}, examples)
