"""Properties of the GMM-guided adaptive loss (spec 3.10) and of its guards, stages and diagnostics."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import toy_info, toy_split
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import registry
from benchmark.contracts import DatasetInfo, Modality, Split, TrainBudget, TrainContext
from benchmark.seeding import set_determinism

gmm = registry.get("method", "gmm_adaptive").cls
mod = __import__(gmm.__module__, fromlist=["_"])
HP = gmm.Hparams
FAST = settings(max_examples=15, deadline=None)
BUDGET = TrainBudget(max_epochs=4, patience=4, batch_size=32, width=16)


def two_info(n_classes: int = 3) -> DatasetInfo:
    return DatasetInfo("two", (Modality("a", "tabular", (4,)), Modality("b", "tabular", (4,))), n_classes)


def two_split(n: int, seed: int, prefix: str = "s") -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = {"a": torch.randn(n, 4, generator=g) + y[:, None], "b": torch.randn(n, 4, generator=g)}
    return Split(x=x, mask=torch.ones(n, 2, dtype=torch.bool), y=y, labeled=torch.ones(n, dtype=torch.bool),
                 ids=np.array([f"{prefix}{i}" for i in range(n)]))


def ctx(seed: int = 0, budget: TrainBudget = BUDGET) -> TrainContext:
    return TrainContext.from_seed(seed, budget)


def built(info: DatasetInfo, seed: int = 0, **hp):
    torch.manual_seed(seed)
    method = gmm(info, HP(**hp))
    method.net = method.build(8)
    return method


def fitted(info, train, val, seed: int = 0, budget: TrainBudget = BUDGET, **hp):
    set_determinism(1)
    torch.manual_seed(seed)
    method = gmm(info, HP(**hp))
    c = ctx(seed, budget)
    method.fit(train, val, c)
    return method, c


def mixture_sample(seed: int, n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    imbalanced = rng.random(n) < 0.3
    return np.where(imbalanced, rng.normal(0.6, 0.1, n), rng.normal(0.0, 0.05, n))


probs = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30)


# ---- 3.10 (1): identical modalities ----------------------------------------------------------------------------


@FAST
@given(probs, st.integers(2, 5))
def test_identical_modalities_give_zero_gap_and_zero_penalty(p: list[float], m: int) -> None:
    same = torch.tensor(p).unsqueeze(1).repeat(1, m)
    assert torch.equal(mod.spread(same), torch.zeros(len(p)))
    assert torch.equal(mod.gap_penalty_many(same), torch.zeros(len(p)))
    two = same[:, :2]
    for literal in (True, False):
        g = mod.signed_gap(two, literal=literal)
        assert torch.equal(g, torch.zeros(len(p))) and torch.equal(mod.gap_penalty_two(g), torch.zeros(len(p)))


def test_identical_networks_make_the_gap_terms_vanish_from_the_loss() -> None:
    method = built(two_info(), lambda_gap=5.0, lambda_al=0.0)
    method.net.encoders["b"].load_state_dict(method.net.encoders["a"].state_dict())
    with torch.no_grad():
        w = method.net.fusion.weight
        w[:, 8:] = w[:, :8]
    x = torch.randn(20, 4)
    batch = {"a": x, "b": x.clone()}
    mask, y = torch.ones(20, 2, dtype=torch.bool), torch.arange(20) % 3
    _, uni = method.net(batch, mask)
    assert torch.allclose(uni[:, 0], uni[:, 1])
    fit = mod.fit_gap_mixture(mixture_sample(0, 200))
    gamma, valid = torch.rand(20), torch.ones(20, dtype=torch.bool)
    with_penalty = method.adaptive_loss(batch, mask, y, gamma, valid, fit)
    method.hparams = dataclasses.replace(method.hparams, lambda_gap=0.0)
    assert torch.allclose(with_penalty, method.adaptive_loss(batch, mask, y, gamma, valid, fit))


# ---- 3.10 (2): swapping the modalities ------------------------------------------------------------------------


@FAST
@given(probs, probs)
def test_swapping_modalities_negates_the_signed_gap_and_keeps_its_size(p1: list[float], p2: list[float]) -> None:
    n = min(len(p1), len(p2))
    p = torch.tensor([p1[:n], p2[:n]]).T
    swapped = p.flip(1)
    assert torch.equal(mod.signed_gap(swapped), -mod.signed_gap(p))
    assert torch.equal(mod.spread(swapped), mod.spread(p))
    assert torch.allclose(mod.spread(p), mod.signed_gap(p).abs())  # spread = |g| for two modalities


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000))
def test_swapped_fit_gives_the_same_posteriors_up_to_label_switching(seed: int) -> None:
    g = mixture_sample(seed, 1000)
    fit, flipped = mod.fit_gap_mixture(g, random_state=seed), mod.fit_gap_mixture(-g, random_state=seed)
    assert not fit.fallback and not flipped.fallback
    assert abs(fit.mu_b + flipped.mu_b) < 1e-6 and abs(fit.mu_i + flipped.mu_i) < 1e-6
    np.testing.assert_allclose(mod.imbalanced_posterior(fit, g), mod.imbalanced_posterior(flipped, -g), atol=1e-6)


# ---- 3.10 (3): posteriors ---------------------------------------------------------------------------------------


@FAST
@given(st.lists(st.floats(-1, 1), min_size=1, max_size=40), st.floats(0.01, 0.99), st.floats(-1, 1),
       st.floats(-1, 1), st.floats(1e-4, 1.0), st.floats(1e-4, 1.0))
def test_component_posteriors_are_probabilities(g, w, mu1, mu2, v1, v2) -> None:
    post = mod.component_posteriors(np.array(g), np.array([w, 1 - w]), np.array([mu1, mu2]), np.array([v1, v2]))
    assert post.shape == (len(g), 2) and np.all(post >= 0) and np.all(post <= 1)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.floats(-0.8, 0.8), st.floats(-0.8, 0.8), st.sampled_from(["abs", "low"]))
def test_balanced_component_is_the_smaller_abs_mean_or_the_lower_mean(seed, m1, m2, rule) -> None:
    rng = np.random.default_rng(seed)
    g = np.concatenate([rng.normal(m1, 0.05, 300), rng.normal(m2, 0.05, 200)])
    fit = mod.fit_gap_mixture(g, balanced=rule, random_state=seed, bic_fallback=False)
    key = abs if rule == "abs" else (lambda v: v)
    assert key(fit.mu_b) <= key(fit.mu_i)
    gamma = mod.imbalanced_posterior(fit, g)
    assert np.all((gamma >= 0) & (gamma <= 1))


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_balanced_component_is_reidentified_whatever_order_em_returns(state: int) -> None:
    g = mixture_sample(3, 800)
    reference = mod.fit_gap_mixture(g, random_state=0)
    fit = mod.fit_gap_mixture(g, random_state=state)
    assert abs(fit.mu_b - reference.mu_b) < 1e-3 and abs(fit.mu_i - reference.mu_i) < 1e-3


# ---- 3.10 (4): reduction to the warm-up loss ---------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["two", "toy"]), st.sampled_from(["sample", "distribution"]),
       st.booleans())
def test_adaptive_loss_with_zero_gamma_and_no_penalties_is_warmup_plus_fusion_ce(seed, which, alignment,
                                                                                 literal) -> None:
    info = two_info() if which == "two" else toy_info()
    method = built(info, seed, lambda_gap=0.0, lambda_al=0.0, alignment=alignment, literal_gap=literal)
    data = two_split(24, seed) if which == "two" else toy_split(24, seed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(24, len(info.modalities), generator=g) > 0.2
    x = data.with_inputs(data.x, mask).x
    y = data.y.clone()
    y[::5] = -1  # unlabelled rows are skipped
    fit = mod.fit_gap_mixture(mixture_sample(seed, 300))
    zero, valid = torch.zeros(24), torch.ones(24, dtype=torch.bool)
    adaptive = method.adaptive_loss(x, mask, y, zero, valid, fit)
    fused, _ = method.net(x, mask)
    lab = y >= 0
    ce = torch.nn.functional.cross_entropy(fused[lab], y[lab])
    assert torch.allclose(adaptive, method.warmup_loss(x, mask, y) + ce, rtol=1e-5, atol=1e-6)


# ---- 3.10 (5): recovery of a known mixture ----------------------------------------------------------------------


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000))
def test_recovers_a_known_two_component_mixture(seed: int) -> None:
    g = mixture_sample(seed)
    fit = mod.fit_gap_mixture(g, random_state=seed)
    assert not fit.fallback
    assert abs(fit.mu_b - 0.0) < 0.02 and abs(fit.mu_i - 0.6) < 0.02
    assert abs(np.sqrt(fit.var_b) - 0.05) < 0.01 and abs(np.sqrt(fit.var_i) - 0.1) < 0.01
    gamma = mod.imbalanced_posterior(fit, g)
    assert np.all(gamma[g > 0.5] > 0.9)


# ---- guards against a degenerate mixture ----------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.floats(-0.5, 0.5))
def test_one_gaussian_falls_back_to_uniform_weights(seed: int, centre: float) -> None:
    g = np.random.default_rng(seed).normal(centre, 0.1, 2000)
    fit = mod.fit_gap_mixture(g, random_state=seed)
    assert fit.fallback and fit.bic1 < fit.bic2
    assert np.all(mod.imbalanced_posterior(fit, g) == 0.5)
    assert abs(fit.mu_ref - g.mean()) < 1e-6 and abs(fit.var_ref - g.var()) < 1e-3
    kept = mod.fit_gap_mixture(g, random_state=seed, bic_fallback=False)
    assert not kept.fallback


def test_collapsed_gaps_floor_the_variance_and_stay_finite() -> None:
    rng = np.random.default_rng(0)
    spike = np.concatenate([np.zeros(700), rng.normal(0.5, 0.2, 300)])
    fit = mod.fit_gap_mixture(spike, var_floor=1e-3)
    assert min(fit.var_b, fit.var_i, fit.var_ref) >= 1e-3 and abs(fit.mu_b) < 1e-3
    assert np.all(np.isfinite(mod.imbalanced_posterior(fit, spike)))
    for flat in (np.zeros(500), np.zeros(2), np.zeros(0)):  # every gap 0 (untrained model), too few points
        fit = mod.fit_gap_mixture(flat)
        assert fit.fallback and fit.var_ref >= 1e-4
        assert np.all(mod.imbalanced_posterior(fit, flat) == 0.5)


# ---- gradients of the gap terms -------------------------------------------------------------------------------


@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20))
def test_one_sided_gap_raises_the_weaker_modality_only(pairs) -> None:
    p = torch.tensor(pairs, dtype=torch.float64).requires_grad_(True)
    mod.gap_penalty_two(mod.signed_gap(p, literal=False)).sum().backward()
    hi = p.detach().argmax(dim=1)
    grad = p.grad
    rows = torch.arange(len(p))
    assert torch.all(grad[rows, hi] == 0) and torch.all(grad[rows, 1 - hi] <= 0)
    q = p.detach().clone().requires_grad_(True)
    mod.gap_penalty_two(mod.signed_gap(q, literal=True)).sum().backward()
    differ = (q[:, 0] != q[:, 1]).detach()
    assert torch.all(q.grad[differ].abs().min(dim=1).values > 0)  # literal: both modalities get a gradient


@FAST
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=20))
def test_many_modality_penalty_pushes_up_only_modalities_below_the_mean(rows) -> None:
    p = torch.tensor(rows, dtype=torch.float64).requires_grad_(True)
    mod.gap_penalty_many(p).sum().backward()
    below = p.detach() < p.detach().mean(dim=1, keepdim=True)
    assert torch.all(p.grad[~below] == 0) and torch.all(p.grad[below] <= 0)
    t = mod.spread_transform(mod.spread(p.detach()), 1e-3)
    assert torch.all(torch.isfinite(t))


# ---- network and missing modalities ---------------------------------------------------------------------------


def test_split_heads_add_up_to_the_fusion_logits_and_zero_fill_missing_features() -> None:
    method = built(two_info())
    assert method.net.split and method.net.aux is None
    x = {"a": torch.randn(10, 4), "b": torch.randn(10, 4)}
    mask = torch.ones(10, 2, dtype=torch.bool)
    mask[::2, 1] = False
    fused, uni = method.net(x, mask)
    assert torch.allclose(fused, uni.sum(dim=1), atol=1e-6)
    bias_share = method.net.fusion.bias / 2
    assert torch.allclose(uni[::2, 1], bias_share.expand(5, -1))
    assert not built(toy_info()).net.split  # M > 2: auxiliary heads by default


def test_unimodal_mean_predictor_averages_the_present_unimodal_logits() -> None:
    method = built(toy_info(), missing_predict="unimodal_mean")
    data = toy_split(12, seed=4)
    mask = data.mask.clone()
    mask[:6, 0] = False
    x = data.with_inputs(data.x, mask).x
    fused, uni = method.net(x, mask)
    out = method.logits(x, mask)
    assert torch.allclose(out[:6], uni[:6, 1:].mean(dim=1), atol=1e-6)
    assert torch.equal(out[6:], fused[6:])


def test_samples_missing_a_modality_are_left_out_of_gap_gmm_and_alignment() -> None:
    train = toy_split(90, seed=1)
    mask = train.mask.clone()
    mask[::3, 2] = False
    train = train.with_inputs(train.x, mask)
    method, _ = fitted(toy_info(), train, toy_split(30, seed=2, prefix="v"), warmup_epochs=1)
    complete = mask.all(dim=1)
    assert torch.equal(method.valid, complete) and torch.all(method.gamma[~complete] == 0)
    assert set(method.extras()["gmm_per_epoch"]["n"]) == {int(complete.sum())}
    # The loss of a sample without a modality does not depend on the gap and alignment weights.
    rows = torch.nonzero(~complete).flatten()[:8]
    x, m, y = {k: v[rows] for k, v in train.x.items()}, mask[rows], train.y[rows]
    gamma = torch.full((8,), 0.9)
    base = method.adaptive_loss(x, m, y, gamma, torch.ones(8, dtype=torch.bool), method.fit_)
    method.hparams = dataclasses.replace(method.hparams, lambda_gap=7.0, lambda_al=9.0)
    assert torch.allclose(base, method.adaptive_loss(x, m, y, gamma, torch.ones(8, dtype=torch.bool), method.fit_))


# ---- stages, fine-tuning, diagnostics -------------------------------------------------------------------------


@pytest.mark.parametrize(("hp", "start"), [
    ({"warmup_epochs": 2, "warmup_plateau": 0, "warmup_val_stall": 0}, 2),
    ({"warmup_epochs": 0}, 0),
    ({"warmup_epochs": 10, "warmup_plateau": 0, "warmup_val_stall": 0}, None),
])
def test_warmup_then_adaptive_stage(hp, start) -> None:
    method, c = fitted(two_info(), two_split(60, 1), two_split(30, 2, "v"), **hp)
    ex = method.extras()
    assert ex["adaptive_from_epoch"] == start
    refits = ex["gmm_per_epoch"].get("epoch", [])
    assert refits == ([] if start is None else list(range(start, len(c.epoch_log))))


@pytest.mark.parametrize(("hp", "start"), [
    ({"warmup_epochs": 2, "warmup_plateau": 0, "warmup_val_stall": 0}, 2),
    ({"warmup_epochs": 0}, 0),
    ({"warmup_epochs": 10, "warmup_plateau": 0, "warmup_val_stall": 0}, None),
])
def test_early_stopping_keeps_only_adaptive_epochs_on_the_validation_log_likelihood(hp, start) -> None:
    """Issue 20: early stopping starts counting after the warm-up; the kept weights come from the adaptive stage
    (or, when training ends in the warm-up, the final weights stand)."""
    budget = dataclasses.replace(BUDGET, max_epochs=6, patience=2)
    method, c = fitted(two_info(), two_split(60, 1), two_split(30, 2, "v"), budget=budget, **hp)
    summary = c.fit_summary
    assert summary["stopping_criterion"] == "log_likelihood" and summary["first_eligible_epoch"] == start
    scores = [e["val_score"] for e in c.epoch_log]
    assert all(s <= 0 for s in scores) and scores == method._val_scores  # a mean log-likelihood
    if start is None:
        assert summary["best_epoch"] == -1 and summary["epochs_run"] == 6
    else:
        assert summary["best_epoch"] >= start
        assert summary["best_val_score"] == max(scores[start:]) == scores[summary["best_epoch"]]
        assert summary["epochs_run"] >= start + budget.patience  # the warm-up does not use up patience


def noise_split(n: int, seed: int, prefix: str = "s") -> Split:
    """Labels drawn independently of the inputs: every step fits noise, so the validation log-likelihood is
    best before training has gone far, i.e. in the warm-up."""
    g = torch.Generator().manual_seed(seed)
    x = {"a": torch.randn(n, 4, generator=g), "b": torch.randn(n, 4, generator=g)}
    y = torch.randint(0, 3, (n,), generator=g)
    return Split(x=x, mask=torch.ones(n, 2, dtype=torch.bool), y=y, labeled=torch.ones(n, dtype=torch.bool),
                 ids=np.array([f"{prefix}{i}" for i in range(n)]))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("hp", [{"warmup_epochs": 3, "warmup_plateau": 0, "warmup_val_stall": 0}, {}])
def test_kept_weights_come_from_the_adaptive_stage_where_the_warm_up_scores_best(seed: int, hp: dict) -> None:
    """Issue 20 / spec "Measured on the first committed leaderboard": on a run whose best validation score is
    a warm-up epoch's (labels independent of the inputs, so the first epochs score best), the kept epoch is
    still an adaptive one, the best of the adaptive epochs, and the weights the method ends with are that
    epoch's."""
    budget = dataclasses.replace(BUDGET, max_epochs=9, patience=3, lr=0.03)
    set_determinism(1)
    torch.manual_seed(seed)
    method = gmm(two_info(), HP(**hp))
    scored, states = method._val_score, []

    def observed() -> float:  # the score as it is; the weights it was computed on, kept aside
        states.append(copy.deepcopy(method.net.state_dict()))
        return scored()

    method._val_score = observed
    c = ctx(seed, budget)
    method.fit(noise_split(60, 1), noise_split(60, 2, "v"), c)
    start, kept = method.extras()["adaptive_from_epoch"], c.fit_summary["best_epoch"]
    scores = [e["val_score"] for e in c.epoch_log]
    assert start is not None and 0 < start < len(scores)
    assert int(np.argmax(scores)) < start  # the construction: a warm-up epoch scores best overall
    assert kept >= start and kept == method.extras()["kept_epoch"] == start + int(np.argmax(scores[start:]))
    assert c.fit_summary["first_eligible_epoch"] == start
    final = method.net.state_dict()
    assert all(torch.equal(final[k], v) for k, v in states[kept].items())
    assert not all(torch.equal(final[k], v) for k, v in states[int(np.argmax(scores))].items())


def test_record_counts_gmm_fits_fallbacks_and_names_the_inf_paths() -> None:
    """Every GMM fit (each adaptive refit, then the final fit) is counted, with those that fell back to one
    component; the gap form and the test-time path with a modality missing are named, [INF] where they are."""
    method, c = fitted(two_info(), two_split(60, 1), two_split(30, 2, "v"), warmup_epochs=1)
    ex = method.extras()
    refits = ex["gmm_per_epoch"]["fallback"]
    assert ex["gmm_fits"] == len(refits) + 1 == len(c.epoch_log) - 1 + 1
    assert ex["gmm_fallbacks"] == sum(refits) + int(ex["final_fit"]["fallback"])
    assert ex["gmm_fallback_share"] == pytest.approx(ex["gmm_fallbacks"] / ex["gmm_fits"])
    assert ex["gap_form"].endswith("[SRC]") and "two modalities" in ex["gap_form"]
    assert ex["missing_modality_prediction"].startswith("unimodal_mean [INF]")
    before = list(method._fit_counts)
    method._fit_mixture(torch.zeros(20), torch.ones(20, dtype=torch.bool), "constant")  # all gaps equal
    assert method._fit_counts == [before[0] + 1, before[1] + 1]
    method._fit_mixture(torch.tensor(mixture_sample(0, 400)), torch.ones(400, dtype=torch.bool), "bimodal")
    assert method._fit_counts == [before[0] + 2, before[1] + 1]
    many, _ = fitted(toy_info(), toy_split(60, seed=1), toy_split(30, seed=2, prefix="v"), warmup_epochs=1,
                     missing_predict="fusion")
    ex = many.extras()
    assert "M > 2" in ex["gap_form"] and ex["gap_form"].endswith("[INF]") and "logit" in ex["gap_form"]
    assert ex["missing_modality_prediction"].startswith("fusion [INF]") and ex["gmm_fits"] >= 1


@pytest.mark.parametrize(("hp", "patience", "acc", "val", "over"), [
    ({"warmup_plateau": 2, "warmup_val_stall": 0}, 5, [0.5, 0.6, 0.6, 0.6], [0.1, 0.2, 0.3, 0.4], True),
    ({"warmup_plateau": 2, "warmup_val_stall": 0}, 5, [0.5, 0.6, 0.6, 0.7], [0.1, 0.2, 0.3, 0.4], False),
    ({"warmup_plateau": 0, "warmup_val_stall": 2}, 5, [0.5, 0.6, 0.7, 0.8], [0.5, 0.7, 0.6, 0.7], True),
    ({"warmup_plateau": 0, "warmup_val_stall": 3}, 5, [0.5, 0.6, 0.7, 0.8], [0.5, 0.7, 0.6, 0.7], False),
    ({"warmup_plateau": 0, "warmup_val_stall": 3}, 2, [0.5, 0.6, 0.7, 0.8], [0.5, 0.7, 0.7, 0.8], False),
    ({"warmup_plateau": 0, "warmup_val_stall": 3}, 2, [0.5, 0.6, 0.7, 0.8], [0.5, 0.7, 0.8, 0.8], True),
    ({"warmup_plateau": 0, "warmup_val_stall": 0, "warmup_epochs": 4}, 5, [0.5] * 4, [0.5] * 4, True),
    ({"warmup_plateau": 0, "warmup_val_stall": 0}, 5, [0.5] * 4, [0.5] * 4, False),
])
def test_warmup_ends_on_plateau_validation_stall_or_length(hp, patience, acc, val, over) -> None:
    method = gmm(two_info(), HP(**hp))
    method.ctx = ctx(budget=dataclasses.replace(BUDGET, patience=patience))
    method._val_scores = val
    assert method._warmup_over(len(acc), acc) is over


def test_extras_are_small_json_with_mixture_histogram_and_unimodal_accuracies() -> None:
    train = toy_split(90, seed=1)
    method, _ = fitted(toy_info(), train, toy_split(30, seed=2, prefix="v"), warmup_epochs=1, hist_bins=12)
    ex = json.loads(json.dumps(method.extras(), allow_nan=False))
    per_epoch = ex["gmm_per_epoch"]
    assert per_epoch["epoch"] == [1, 2, 3]
    assert all(sum(c) == 90 and len(c) == 12 for c in per_epoch["gap_histogram_counts"])
    train_log = ex["train_per_epoch"]
    assert train_log["epoch"] == [0, 1, 2, 3] and len(train_log["unimodal_train_accuracy_mean"]) == 4
    assert all(len(a) == 3 and all(0 <= v <= 1 for v in a) for a in train_log["unimodal_val_accuracy"])
    for key in ("pi_B", "mu_B", "sd_B", "pi_I", "mu_I", "sd_I", "bic1", "bic2", "fallback", "mean_gamma"):
        assert len(per_epoch[key]) == 3
    hist = ex["histogram"]
    assert len(hist["edges"]) == 13 and sum(hist["counts"]) == hist["n"] == 90
    accs = ex["val"]["unimodal_accuracy"]
    assert set(accs) == {"a", "b", "img"} and all(0 <= v <= 1 for v in accs.values())
    assert set(ex["val"]["accuracy_without_modality"]["img"]) == {"fusion", "unimodal_mean"}
    # A very long run is thinned to stay small.
    for key in method._gmm_log:
        method._gmm_log[key] = method._gmm_log[key] * 700
    big = json.dumps(method.extras())
    assert len(big) < 20_000 and '"per_epoch_thinned_every"' in big


def test_finetuning_on_the_balanced_subset() -> None:
    train, val = two_split(60, 1), two_split(30, 2, "v")
    method, c = fitted(two_info(), train, val, warmup_epochs=1, finetune=True, finetune_epochs=2)
    info = method.extras()["finetune"]
    gamma = mod.imbalanced_posterior(mod.MixtureFit(**method.extras()["final_fit"]), np.zeros(1))
    assert 0 <= info["n_balanced"] <= 60
    if info.get("skipped"):
        assert gamma[0] == 0.5  # only a fall-back leaves no sample with γ < 0.5
    else:
        assert [e.get("finetune") for e in c.epoch_log[-2:]] == [1.0, 1.0]
        assert [e["epoch"] for e in c.epoch_log] == list(range(len(c.epoch_log)))
        assert c.fit_summary["finetune_epochs_run"] == 2 and c.fit_summary["epochs_run"] == len(c.epoch_log) - 2


def test_training_is_deterministic_and_the_adaptive_stage_changes_the_model() -> None:
    train, val, test = two_split(60, 1), two_split(30, 2, "v"), two_split(20, 3, "t")
    a, _ = fitted(two_info(), train, val, warmup_epochs=1)
    b, _ = fitted(two_info(), train, val, warmup_epochs=1)
    c, _ = fitted(two_info(), train, val, warmup_epochs=1, lambda_gap=0.0, lambda_al=0.0)
    pa, pb, pc = (m.predict_proba(test.x, test.mask) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.extras() == b.extras()


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="two modalities"):
        gmm(toy_info(), HP(gap_form="signed"))
    for bad in ({"alignment": "both"}, {"spread_eps": 0.5}, {"gmm_init": "kmedoids"}, {"n_init": 0},
                {"var_floor": 0.0}, {"warmup_epochs": -1}, {"refit_every": 0}):
        with pytest.raises(ValueError, match=f"gmm_adaptive: hyperparameter '{next(iter(bad))}'"):
            gmm(two_info(), HP(**bad))
