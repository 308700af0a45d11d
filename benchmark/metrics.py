"""Metrics computed by the runner from predicted probabilities (methods never score themselves)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

#: Bins of the expected calibration error (equal width over the top-class confidence).
ECE_BINS = 15
#: Probabilities are clipped here before the log in the NLL, so one zero does not give infinity.
NLL_EPS = 1e-12


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE with equal-width bins; a bin's weight is its share of samples.

    Written by hand because scikit-learn's calibration_curve is for binary problems only."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def brier_score(proba: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score: mean over samples of the squared distance to the one-hot label."""
    onehot = np.eye(proba.shape[1])[y]
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def all_metrics(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    n_classes = proba.shape[1]
    pred = proba.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
        "nll": float(-np.log(np.clip(proba[np.arange(len(y)), y], NLL_EPS, 1.0)).mean()),
        "ece": expected_calibration_error(proba, y),
        "brier": brier_score(proba, y),
    }


def reliability_bins(proba: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (for reliability diagrams)."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    which = np.clip(np.digitize(conf, np.linspace(0.0, 1.0, bins + 1)[1:-1], right=True), 0, bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        sel = which == b
        out["count"].append(int(sel.sum()))
        out["confidence"].append(float(conf[sel].mean()) if sel.any() else float("nan"))
        out["accuracy"].append(float(correct[sel].mean()) if sel.any() else float("nan"))
    return out
