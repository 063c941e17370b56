"""Classification, multi-label and regression metrics over plain arrays (numpy only).

Each follows its usual definition (the one scikit-learn and scipy implement, which the tests
compare against): accuracy; F1 of the positive class for two labels; macro-F1 (the unweighted
mean of per-label F1, labels never seen in gold or prediction left out); the multi-class
Matthews correlation coefficient (Gorodkin's R_K, 0 when undefined); micro/macro F1 over
multi-label 0/1 matrices; Pearson's r and Spearman's rho (Pearson over average ranks, so ties
count as in scipy.stats.spearmanr).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)


def confusion(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> np.ndarray:
    """[gold, predicted] counts."""
    out = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(out, (np.asarray(gold), np.asarray(pred)), 1)
    return out


def matthews(matrix: np.ndarray) -> float:
    """Matthews correlation from a confusion matrix (any number of classes); 0 when undefined."""
    c = matrix.astype(np.float64)
    t, p = c.sum(1), c.sum(0)  # per class: gold count, predicted count
    n, correct = c.sum(), np.trace(c)
    denom = np.sqrt(n * n - (p * p).sum()) * np.sqrt(n * n - (t * t).sum())
    return float((correct * n - (t * p).sum()) / denom) if denom > 0 else 0.0


def classification_scores(gold: Sequence[int], pred: Sequence[int], num_labels: int) -> dict[str, float]:
    """accuracy, macro_f1, mcc, and f1 of label id 1 (the positive class) when there are two labels."""
    if len(gold) == 0:
        raise ValueError("no examples to score")
    matrix = confusion(gold, pred, num_labels)
    tp = np.diag(matrix).astype(np.float64)
    fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
    present = (matrix.sum(0) + matrix.sum(1)) > 0
    per_label = _f1(tp, fp, fn)
    out = {
        "accuracy": float(tp.sum() / matrix.sum()),
        "macro_f1": float(per_label[present].mean()),
        "mcc": matthews(matrix),
    }
    if num_labels == 2:
        out["f1"] = float(per_label[1])
    return out


def multilabel_scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """micro_f1, macro_f1 (labels absent from gold and prediction left out) and exact-set accuracy."""
    gold, pred = np.asarray(gold, dtype=bool), np.asarray(pred, dtype=bool)
    if gold.size == 0:
        raise ValueError("no examples to score")
    tp = (gold & pred).sum(0).astype(np.float64)
    fp = (~gold & pred).sum(0).astype(np.float64)
    fn = (gold & ~pred).sum(0).astype(np.float64)
    present = (gold | pred).any(0)
    micro = _f1(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))[0]
    macro = float(_f1(tp, fp, fn)[present].mean()) if present.any() else 0.0
    return {"micro_f1": float(micro), "macro_f1": macro, "exact_match": float((gold == pred).all(1).mean())}


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(values))
    np.add.at(sums, inverse, ranks)
    return (sums / counts)[inverse]


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    return pearson(_ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64)))


def regression_scores(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """pearson, spearman and mse."""
    if len(gold) < 2:
        raise ValueError("correlations need at least two examples")
    g, p = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return {"pearson": pearson(g, p), "spearman": spearman(g, p), "mse": float(((g - p) ** 2).mean())}
