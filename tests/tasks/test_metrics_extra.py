"""The classification, multi-label and regression metrics equal scikit-learn's and scipy's."""

import numpy as np
import pytest
from peers import peer

from bertkit.tasks import metrics


@pytest.mark.parametrize("num_labels", [2, 3, 5])
def test_classification_scores_equal_sklearn(num_labels):
    sk = peer("sklearn.metrics")
    rng = np.random.default_rng(num_labels)
    gold = rng.integers(0, num_labels, 300)
    pred = np.where(rng.random(300) < 0.6, gold, rng.integers(0, num_labels, 300))
    ours = metrics.classification_scores(gold.tolist(), pred.tolist(), num_labels)
    tol = dict(rel=1e-12, abs=1e-12)  # the same sums in float64
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(gold, pred), **tol)
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(gold, pred, average="macro"), **tol)
    assert ours["mcc"] == pytest.approx(sk.matthews_corrcoef(gold, pred), **tol)
    if num_labels == 2:
        assert ours["f1"] == pytest.approx(sk.f1_score(gold, pred), **tol)


def test_mcc_is_zero_when_undefined_and_macro_f1_skips_absent_labels():
    assert metrics.classification_scores([1, 1, 1], [1, 1, 1], 2)["mcc"] == 0.0
    assert metrics.classification_scores([0, 1], [0, 1], 4)["macro_f1"] == 1.0


def test_multilabel_scores_equal_sklearn():
    sk = peer("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold = rng.random((200, 6)) < 0.3
    pred = np.where(rng.random((200, 6)) < 0.7, gold, rng.random((200, 6)) < 0.3)
    ours = metrics.multilabel_scores(gold, pred)
    assert ours["micro_f1"] == pytest.approx(sk.f1_score(gold, pred, average="micro"), rel=1e-12)
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(gold, pred, average="macro"), rel=1e-12)
    assert ours["exact_match"] == pytest.approx(sk.accuracy_score(gold, pred), rel=1e-12)


def test_pearson_and_spearman_equal_scipy_with_ties():
    stats = peer("scipy.stats")
    rng = np.random.default_rng(1)
    gold = rng.integers(1, 6, 400).astype(float)  # many ties, as SICK's scores have
    pred = gold + rng.normal(0, 1.5, 400)
    pred[:50] = np.round(pred[:50])
    ours = metrics.regression_scores(gold.tolist(), pred.tolist())
    assert ours["pearson"] == pytest.approx(stats.pearsonr(gold, pred)[0], rel=1e-10, abs=1e-12)
    assert ours["spearman"] == pytest.approx(stats.spearmanr(gold, pred)[0], rel=1e-10, abs=1e-12)
    assert ours["mse"] == pytest.approx(float(((gold - pred) ** 2).mean()), rel=1e-12)
