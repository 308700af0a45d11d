from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, roc_auc_score

from benchmark.metrics import all_metrics, brier_score, expected_calibration_error


def test_metrics_agree_with_scikit_learn_on_random_probabilities() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(0, 4, size=200)
    m = all_metrics(p, y)
    assert np.isclose(m["accuracy"], (p.argmax(1) == y).mean())
    assert np.isclose(m["macro_f1"], f1_score(y, p.argmax(1), average="macro"))
    assert np.isclose(m["nll"], log_loss(y, p, labels=range(4)))


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident() -> None:
    # 10 samples at confidence 0.8, 8 of them right: perfectly calibrated.
    p = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert np.isclose(expected_calibration_error(p, y), 0.0)
    # Confidence 1.0, half right: ECE 0.5.
    p = np.tile([1.0, 0.0], (10, 1))
    y = np.array([0] * 5 + [1] * 5)
    assert np.isclose(expected_calibration_error(p, y), 0.5)


def test_brier_score_known_values() -> None:
    assert np.isclose(brier_score(np.array([[1.0, 0.0]]), np.array([0])), 0.0)
    assert np.isclose(brier_score(np.array([[0.0, 1.0]]), np.array([0])), 1.0)  # binary: in [0, 1]
    assert np.isclose(brier_score(np.array([[0.5, 0.5]]), np.array([0])), 0.25)
    assert np.isclose(brier_score(np.array([[0.0, 1.0, 0.0]]), np.array([0])), 2.0)  # multiclass: in [0, 2]


@pytest.mark.parametrize("k", [2, 3, 7])
def test_brier_score_is_scikit_learns(k: int) -> None:
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(k)
    for n in (1, 5, 200):
        p = rng.dirichlet(np.ones(k), size=n)
        y = rng.integers(0, k, size=n)
        assert np.isclose(brier_score(p, y), brier_score_loss(y, p, labels=np.arange(k)), rtol=1e-12, atol=1e-15)


def test_macro_f1_leaves_out_classes_absent_from_labels_and_predictions() -> None:
    """Under label shift a class can vanish from the test split; scoring it 0 halved macro-F1."""
    p = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.8, 0.2, 0.0]])
    y = np.array([0, 1, 0])
    assert all_metrics(p, y)["macro_f1"] == 1.0
    assert all_metrics(p, y)["macro_f1"] == f1_score(y, p.argmax(1), average="macro")


def test_balanced_accuracy_and_auroc_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=300)
    y = rng.integers(0, 4, size=300)
    m = all_metrics(p, y)
    assert np.isclose(m["balanced_accuracy"], balanced_accuracy_score(y, p.argmax(1)))
    assert np.isclose(m["auroc"], roc_auc_score(y, p, multi_class="ovr", average="macro"))
    # binary: the positive class's column
    p2 = rng.dirichlet(np.ones(2), size=200)
    y2 = (rng.random(200) < 0.1).astype(int)  # imbalanced
    m2 = all_metrics(p2, y2)
    assert np.isclose(m2["auroc"], roc_auc_score(y2, p2[:, 1]))
    assert np.isclose(m2["balanced_accuracy"], balanced_accuracy_score(y2, p2.argmax(1)))


def test_majority_class_predictor_has_high_accuracy_but_chance_balanced_accuracy_and_auroc() -> None:
    y = np.array([0] * 94 + [1] * 6)
    p = np.tile([0.94, 0.06], (100, 1))
    m = all_metrics(p, y)
    assert np.isclose(m["accuracy"], 0.94)
    assert np.isclose(m["balanced_accuracy"], 0.5) and np.isclose(m["auroc"], 0.5)


def test_the_existing_metrics_are_unchanged_by_the_new_keys() -> None:
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, size=50)
    m = all_metrics(p, y)
    assert list(m)[:5] == ["accuracy", "macro_f1", "nll", "ece", "brier"]
    assert m["ece"] == expected_calibration_error(p, y) and m["brier"] == brier_score(p, y)


def test_degenerate_labels_never_raise() -> None:
    rng = np.random.default_rng(3)
    # one class present: balanced accuracy is that class's recall (as scikit-learn), AUROC is undefined (NaN)
    p = rng.dirichlet(np.ones(3), size=40)
    y = np.zeros(40, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning escapes either
        m = all_metrics(p, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y, p.argmax(1))
    assert np.isclose(m["balanced_accuracy"], expected) and math.isnan(m["auroc"])
    m_bin = all_metrics(rng.dirichlet(np.ones(2), size=10), np.ones(10, dtype=int))
    assert math.isnan(m_bin["auroc"])
    # a class absent from y (class 2 of 3): the macro mean runs over the classes present
    y = np.array([0, 1] * 20)
    m = all_metrics(p, y)
    per_class = [roc_auc_score(y == c, p[:, c]) for c in (0, 1)]
    assert np.isclose(m["auroc"], np.mean(per_class))
    # rows that do not sum to 1 exactly (float32 rounding) and non-finite scores do not raise either
    m = all_metrics((p * 1.001).astype(np.float32), rng.integers(0, 3, size=40))
    assert 0.0 <= m["auroc"] <= 1.0
    bad = p.copy()
    bad[0, 0] = np.nan
    assert math.isnan(all_metrics(bad, rng.integers(0, 3, size=40))["auroc"])
