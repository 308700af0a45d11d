"""Early stopping (issue 19, point 5; issue 20): the default criterion is the mean log-likelihood of the labelled
validation samples, it never reads a removed label, and the trainer records what it stopped on."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch

from benchmark import registry
from benchmark.contracts import DatasetInfo, Modality, Split, TrainBudget, TrainContext
from benchmark.metrics import all_metrics
from benchmark.training import fit_network, labeled_accuracy

EarlyFusion = registry.get("method", "early_fusion").cls
MMDRO = registry.get("method", "mm_dro").cls
blocks = importlib.import_module("benchmark.plugins_methods._blocks")  # the methods' shared blocks
LOG_LIKELIHOOD, cross_entropy = blocks.LOG_LIKELIHOOD, blocks.cross_entropy
labeled_log_likelihood, mean_log_likelihood = blocks.labeled_log_likelihood, blocks.mean_log_likelihood

IMBALANCED = DatasetInfo("imbalanced", (Modality("a", "tabular", (4,)), Modality("b", "tabular", (4,))), 2)


def imbalanced_split(n: int, seed: int, minority: float = 0.06, shift: float = 1.0) -> Split:
    """94% majority class; the minority class shifts the first modality's mean by ``shift`` in total (weakly
    informative: the Bayes AUROC is about 0.76, and no sample's posterior comes near 0.5)."""
    g = np.random.default_rng(seed)
    y = (g.random(n) < minority).astype(np.int64)
    x = g.standard_normal((n, 8)).astype(np.float32)
    x[:, :4] += (shift / 2) * y[:, None]
    return Split(x={"a": torch.from_numpy(x[:, :4].copy()), "b": torch.from_numpy(x[:, 4:].copy())},
                 mask=torch.ones(n, 2, dtype=torch.bool), y=torch.from_numpy(y),
                 labeled=torch.ones(n, dtype=torch.bool), ids=np.array([f"s{seed}_{i}" for i in range(n)]))


class AccuracyStoppedEarlyFusion(EarlyFusion):
    """early_fusion as it stopped before issue 19: on validation accuracy."""

    stopping_criterion = "accuracy"

    def val_score(self) -> float:
        val = self.val_split
        return labeled_accuracy(self.predict_proba(val.x, val.mask), val)


def _ctx(max_epochs: int = 12, patience: int = 5, batch_size: int = 64) -> TrainContext:
    return TrainContext.from_seed(0, TrainBudget(max_epochs=max_epochs, patience=patience, batch_size=batch_size,
                                                 lr=1e-3, width=32))


@pytest.fixture(scope="module")
def imbalanced_fits():
    train, val, test = imbalanced_split(1500, 0), imbalanced_split(1000, 1), imbalanced_split(2000, 2)
    out = {}
    for cls in (AccuracyStoppedEarlyFusion, EarlyFusion):
        torch.manual_seed(0)
        ctx = _ctx()
        method = cls(IMBALANCED)
        method.fit(train, val, ctx)
        proba = method.predict_proba(test.x, test.mask).numpy()
        out[cls.stopping_criterion] = (ctx, proba, all_metrics(proba, test.y.numpy()))
    return out


def test_accuracy_criterion_keeps_the_first_epoch_majority_predictor(imbalanced_fits) -> None:
    ctx, proba, metrics = imbalanced_fits["accuracy"]
    scores = [e["val_score"] for e in ctx.epoch_log]
    assert len(set(scores)) == 1, "validation accuracy is flat (every epoch predicts the majority class)"
    assert ctx.fit_summary["best_epoch"] == 0 and ctx.fit_summary["stopping_criterion"] == "accuracy"
    assert ctx.fit_summary["epochs_run"] == 1 + 5  # the first epoch, then patience epochs without improvement
    assert (proba.argmax(axis=1) == 0).all()
    assert metrics["balanced_accuracy"] == 0.5


def test_log_likelihood_criterion_keeps_later_weights_that_rank_the_minority_class(imbalanced_fits) -> None:
    ctx, proba, metrics = imbalanced_fits[LOG_LIKELIHOOD]
    summary = ctx.fit_summary
    assert summary["stopping_criterion"] == LOG_LIKELIHOOD and summary["kept_before_first_step"] is False
    assert summary["best_epoch"] > 0
    scores = [e["val_score"] for e in ctx.epoch_log]
    assert summary["best_val_score"] == max(scores) == scores[summary["best_epoch"]]
    assert metrics["auroc"] > 0.65
    _, _, acc_metrics = imbalanced_fits["accuracy"]
    assert metrics["auroc"] > acc_metrics["auroc"] and metrics["nll"] < acc_metrics["nll"]


# ---------------------------------------------------------------------------------- removed labels never read
def _partly_labelled(n: int = 60, seed: int = 0, n_classes: int = 3) -> tuple[Split, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    labeled = torch.rand(n, generator=g) < 0.5
    split = Split(x={"a": torch.randn(n, 4, generator=g), "b": torch.randn(n, 4, generator=g)},
                  mask=torch.ones(n, 2, dtype=torch.bool), y=torch.where(labeled, y, -1), labeled=labeled,
                  ids=np.array([f"v{i}" for i in range(n)]))
    return split, torch.softmax(torch.randn(n, n_classes, generator=g), dim=1)


def _poisoned(split: Split, proba: torch.Tensor, n_classes: int = 3) -> tuple[Split, torch.Tensor]:
    """Change everything about the unlabelled samples: their features, their predictions, and their labels (to
    valid classes but still flagged unlabelled, which a criterion must not read either)."""
    g = torch.Generator().manual_seed(99)
    off = ~split.labeled
    x = {k: torch.where(off.unsqueeze(1), 100 * torch.randn(v.shape, generator=g), v) for k, v in split.x.items()}
    y = torch.where(off, torch.randint(0, n_classes, split.y.shape, generator=g), split.y)
    p = torch.where(off.unsqueeze(1), torch.softmax(5 * torch.randn(proba.shape, generator=g), dim=1), proba)
    return dataclasses.replace(split, x=x, y=y), p


def test_the_criterion_reads_only_labelled_samples() -> None:
    split, proba = _partly_labelled()
    value = labeled_log_likelihood(proba, split)
    sel = split.labeled
    expected = float(torch.log(proba[sel, split.y[sel]]).mean())
    assert value == pytest.approx(expected, rel=1e-6)
    poisoned, p2 = _poisoned(split, proba)
    assert labeled_log_likelihood(p2, poisoned) == value
    # NaN in an unlabelled row cannot leak in either
    p3 = torch.where((~split.labeled).unsqueeze(1), torch.full_like(proba, float("nan")), proba)
    assert labeled_log_likelihood(p3, split) == value
    # no labelled sample: a constant 0.0
    assert labeled_log_likelihood(proba, split.without_labels()) == 0.0


def test_mean_log_likelihood_over_stacked_models() -> None:
    split, proba = _partly_labelled()
    logp = torch.log(torch.stack([proba, proba.flip(1)]))  # two "coalitions"
    per_model = mean_log_likelihood(logp, split.y)
    assert per_model.shape == (2,)
    assert float(per_model[0]) == pytest.approx(labeled_log_likelihood(proba, split), rel=1e-6)
    assert float(per_model[1]) == pytest.approx(labeled_log_likelihood(proba.flip(1), split), rel=1e-6)


@pytest.mark.parametrize("criterion", ["robust", "log_likelihood", "accuracy"])
def test_method_validation_scores_ignore_unlabelled_validation_samples(criterion: str) -> None:
    info = DatasetInfo("toy", (Modality("a", "tabular", (4,)), Modality("b", "tabular", (4,))), 3)
    train, _ = _partly_labelled(40, seed=1)
    val, _ = _partly_labelled(60, seed=2)
    methods = [MMDRO(info, MMDRO.Hparams(early_stopping=criterion))]
    if criterion == "robust":
        methods.append(EarlyFusion(info))
    for method in methods:
        ctx = TrainContext.from_seed(0, TrainBudget(max_epochs=1, patience=1, batch_size=16, width=8))
        method.fit(train, val, ctx)
        value = method.val_score()
        method.val_split, _ = _poisoned(val, torch.zeros(len(val), 3))
        assert method.val_score() == pytest.approx(value, rel=1e-6, abs=1e-7), type(method).__name__
        assert ctx.fit_summary["stopping_criterion"] == method.stopping_criterion


# ---------------------------------------------------------------------------------- the trainer's bookkeeping
def _tiny(n: int = 64, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (x[:, 0] > 0).long()
    return Split(x={"a": x}, mask=torch.ones(n, 1, dtype=torch.bool), y=y, labeled=torch.ones(n, dtype=torch.bool),
                 ids=np.array([f"t{i}" for i in range(n)]))


def _fit_tiny(scores: list[float], train: Split | None = None, **kwargs) -> tuple[dict, list[torch.Tensor], Split]:
    """fit_network on a linear model with a scripted validation score; returns the summary, the weights after
    each epoch and the training split."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    train = _tiny() if train is None else train
    ctx = TrainContext.from_seed(0, TrainBudget(max_epochs=len(scores), patience=kwargs.pop("patience", 2),
                                                batch_size=16))
    weights: list[torch.Tensor] = []
    it = iter(scores)

    def score() -> float:
        weights.append(net.weight.detach().clone())
        return next(it)

    summary = fit_network(net, lambda b: cross_entropy(net(b.x["a"]), b.y), train, ctx, score, **kwargs)
    weights.append(net.weight.detach().clone())  # what the network ends with
    assert summary.items() <= ctx.fit_summary.items()
    return summary, weights, train


def test_summary_names_the_criterion_and_the_kept_epoch() -> None:
    summary, weights, _ = _fit_tiny([0.1, 0.5, 0.3, 0.2, 0.9], criterion="demo")
    assert summary["stopping_criterion"] == "demo" and summary["best_epoch"] == 1
    assert summary["epochs_run"] == 4 and summary["first_eligible_epoch"] == 0  # patience 2 after epoch 1
    assert summary["kept_before_first_step"] is False
    assert torch.equal(weights[-1], weights[1])
    assert _fit_tiny([0.1])[0]["stopping_criterion"] == "val_score"  # the default name


def test_kept_before_first_step_is_true_only_when_no_step_ran() -> None:
    empty = _tiny().subset(torch.arange(0))
    summary, weights, _ = _fit_tiny([0.3, 0.2, 0.1], train=empty)
    assert summary["steps"] == 0 and summary["best_epoch"] == 0 and summary["kept_before_first_step"] is True
    assert torch.equal(weights[0], weights[-1])


def test_epochs_before_start_epoch_are_never_kept_and_patience_counts_after_them() -> None:
    # The best score is in the warm-up (epoch 1); it cannot be kept, and the warm-up does not use up patience.
    summary, weights, _ = _fit_tiny([0.1, 0.9, 0.5, 0.4, 0.3, 0.2, 0.1], start_epoch=3)
    assert summary["first_eligible_epoch"] == 3 and summary["best_epoch"] == 3
    assert summary["epochs_run"] == 6  # epochs 3 (kept), 4, 5 (patience 2)
    assert torch.equal(weights[-1], weights[3])


def test_can_keep_gates_epochs_dynamically_and_nothing_eligible_keeps_the_final_weights() -> None:
    summary, weights, _ = _fit_tiny([0.9, 0.1, 0.8, 0.2], can_keep=lambda epoch: epoch % 2 == 1)
    assert summary["best_epoch"] == 3 and summary["first_eligible_epoch"] == 1
    summary, weights, _ = _fit_tiny([0.9, 0.8, 0.7], can_keep=lambda epoch: False)
    assert summary["best_epoch"] == -1 and summary["first_eligible_epoch"] is None
    assert summary["epochs_run"] == 3 and summary["kept_before_first_step"] is False
    assert torch.equal(weights[-1], weights[2])  # the final weights stand
