from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, log_loss

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
    assert np.isclose(brier_score(np.array([[0.0, 1.0]]), np.array([0])), 2.0)
    assert np.isclose(brier_score(np.array([[0.5, 0.5]]), np.array([0])), 0.5)
