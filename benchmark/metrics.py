"""Metrics computed by the runner from predicted probabilities (methods never score themselves)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

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
    """scikit-learn's ``brier_score_loss`` (``scale_by_half="auto"``): with two classes the binary Brier
    score, the mean of (p(class 1) - 1[y = 1])^2, in [0, 1]; with more, Brier's original multiclass score,
    the mean over samples of the squared distance to the one-hot label, in [0, 2]. By hand because it is
    called for every test condition of every run; a test checks it equals scikit-learn's."""
    onehot = np.eye(proba.shape[1])[y]
    total = ((proba - onehot) ** 2).sum(axis=1).mean()
    return float(total / 2 if proba.shape[1] == 2 else total)


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """scikit-learn's ``balanced_accuracy_score``: the mean over the classes present in ``y`` of their recall
    (a class absent from ``y`` has no recall and is left out; predicting it only costs the others' recall).
    scikit-learn's warning about predicted classes absent from ``y`` is silenced; the value is unchanged."""
    if len(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, pred))


def macro_auroc(proba: np.ndarray, y: np.ndarray) -> float:
    """One-vs-rest macro AUROC, computed so that it never raises.

    - Two classes: the binary AUROC of ``proba[:, 1]`` (scikit-learn's ``roc_auc_score(y, proba[:, 1])``).
    - More classes: the mean over the classes c present in ``y`` of the binary AUROC of ``proba[:, c]`` for
      ``y == c`` (with every class present, ``roc_auc_score(y, proba, multi_class="ovr", average="macro")``).
    - NaN when fewer than two classes are present in ``y``, when there is no sample, or when ``proba`` has a
      non-finite entry.

    Each binary AUROC is the Mann-Whitney statistic from average ranks (ties count a half), which is the
    area under the ROC curve: computed for every class from one ``rankdata`` call, because scikit-learn's
    per-class curves cost ~20 s per run on a 32-class dataset over a 185-condition grid. A test checks it
    against scikit-learn to 1e-12."""
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1] if proba.ndim == 2 else 0
    present = np.unique(y)
    if len(y) == 0 or n_classes < 2 or len(present) < 2 or not np.isfinite(proba).all():
        return float("nan")
    classes = [1] if n_classes == 2 else list(present)
    ranks = rankdata(proba[:, classes], axis=0)
    aucs = []
    for j, c in enumerate(classes):
        positive = y == c
        n1 = int(positive.sum())
        n0 = len(y) - n1
        aucs.append((ranks[positive, j].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))
    return float(np.mean(aucs))


def all_metrics(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Every metric of one prediction: accuracy, macro F1 (scikit-learn's default: over the classes present
    in the labels or the predictions, so a class absent from both, as under label shift, is not scored 0),
    NLL, ECE, Brier (``brier_score``), balanced accuracy (``balanced_accuracy``) and one-vs-rest macro
    AUROC (``macro_auroc``; NaN with one class in ``y``).
    Balanced accuracy and AUROC do not reward predicting the majority class of an imbalanced dataset."""
    pred = proba.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "nll": float(-np.log(np.clip(proba[np.arange(len(y)), y], NLL_EPS, 1.0)).mean()),
        "ece": expected_calibration_error(proba, y),
        "brier": brier_score(proba, y),
        "balanced_accuracy": balanced_accuracy(pred, y),
        "auroc": macro_auroc(proba, y),
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
