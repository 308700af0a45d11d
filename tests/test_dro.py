"""The DRO spec's unit-testable properties (shared/specs/dro_multimodal.md, 2.9) and the mm_dro / ef_dro
plumbing: budget limits and monotonicity, zero radius = ERM, the dual against brute force, the weights'
constraints, translation and permutation behaviour, the dependence estimator, masking and diagnostics."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math

import numpy as np
import pytest
import torch
from helpers import toy_info, toy_split
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from benchmark import registry
from benchmark.contracts import TrainBudget, TrainContext
from benchmark.seeding import set_determinism, torch_generator
from benchmark.training import batches

registry.methods()  # mounts methods/ as benchmark.plugins_methods
_dro = importlib.import_module("benchmark.plugins_methods._dro")
OBJECTIVES = _dro.OBJECTIVES
robust_risk, modality_budget = _dro.robust_risk, _dro.modality_budget

FAST = settings(max_examples=40, deadline=None)
radii = st.lists(st.floats(0.0, 2.0), min_size=1, max_size=5)
budgets = st.floats(0.0, 30.0)
loss_vectors = st.lists(st.floats(0.0, 10.0), min_size=2, max_size=40).map(
    lambda v: torch.tensor(v, dtype=torch.float64))


def _gamma(values: list[float], M: int) -> torch.Tensor:
    """Symmetric, unit diagonal, strict upper triangle from ``values``."""
    upper = torch.zeros(M, M, dtype=torch.float64)
    iu = torch.triu_indices(M, M, 1)
    upper[iu[0], iu[1]] = torch.tensor(values, dtype=torch.float64).reshape(-1)
    return torch.eye(M, dtype=torch.float64) + upper + upper.T


@st.composite
def rho_and_gamma(draw):
    rho = draw(radii)
    M = len(rho)
    vals = draw(st.lists(st.floats(-1.0, 1.0), min_size=M * (M - 1) // 2, max_size=M * (M - 1) // 2))
    return rho, _gamma(vals, M)


# ------------------------------------------------------------------------------------------- budget
@FAST
@given(rho_and_gamma())
def test_budget_limits_independent_and_perfectly_dependent(case) -> None:
    rho, gamma = case
    M = len(rho)
    assert modality_budget(rho, torch.zeros(M, M)) == pytest.approx(sum(rho))
    assert modality_budget(rho, None) == pytest.approx(sum(rho))
    perfect = modality_budget(rho, -torch.ones(M, M))
    assert perfect == pytest.approx(sum(math.sqrt(r) for r in rho) ** 2, rel=1e-9, abs=1e-12)
    b = modality_budget(rho, gamma)
    assert sum(rho) - 1e-12 <= b <= perfect + 1e-12


@FAST
@given(rho_and_gamma(), st.floats(0.0, 1.0), st.data())
def test_budget_is_non_decreasing_in_each_abs_gamma(case, bump, data) -> None:
    rho, gamma = case
    M = len(rho)
    if M < 2:
        return
    i = data.draw(st.integers(0, M - 2))
    j = data.draw(st.integers(i + 1, M - 1))
    bigger = gamma.clone()
    new = min(1.0, abs(float(gamma[i, j])) + bump) * (1 if data.draw(st.booleans()) else -1)
    bigger[i, j] = bigger[j, i] = new
    assert modality_budget(rho, bigger) >= modality_budget(rho, gamma) - 1e-12
    flipped = gamma.clone()
    flipped[i, j] = flipped[j, i] = -gamma[i, j]
    assert modality_budget(rho, flipped) == pytest.approx(modality_budget(rho, gamma))


def test_budget_worked_example_and_bad_radii() -> None:
    g = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    assert modality_budget([0.1, 0.4], g) == pytest.approx(0.5 + 2 * 0.5 * math.sqrt(0.04))
    with pytest.raises(ValueError):
        modality_budget([0.1, -0.1])


# ------------------------------------------------------------------------------------ zero radius = ERM
@FAST
@given(loss_vectors, st.sampled_from(OBJECTIVES))
def test_zero_radius_is_plain_risk_minimisation(losses, objective) -> None:
    risk, w = robust_risk(losses, 0.0, objective)
    assert float(risk) == pytest.approx(float(losses.mean()), rel=1e-12, abs=1e-12)
    assert torch.allclose(w, torch.full_like(w, 1 / len(losses)))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_zero_radius_method_loss_is_cross_entropy_with_same_gradient(objective: str) -> None:
    """Through the whole plug-in: mm_dro and ef_dro with rho = 0 train on exactly the ERM loss."""
    for name, hp in (("mm_dro", {"rho": 0.0, "dependence": "independent"}),
                     ("ef_dro", {"rho_ef": 0.0})):
        method, batch = build_for_loss(name, objective=objective, **hp)
        assert method.budget_B == 0.0
        loss = method.loss(batch)
        grads = torch.autograd.grad(loss, list(method.net.parameters()), allow_unused=True)
        plain = torch.nn.functional.cross_entropy(method.logits(batch.x, batch.mask), batch.y)
        ref = torch.autograd.grad(plain, list(method.net.parameters()), allow_unused=True)
        assert float(loss.detach()) == pytest.approx(float(plain.detach()), rel=1e-6)
        for a, b in zip(grads, ref, strict=True):
            assert (a is None and b is None) or torch.allclose(a, b, atol=1e-6)


# ------------------------------------------------------------------------------------------- the dual
def _brute_force_worst_case(losses: np.ndarray, B: float) -> float:
    """max_p p.l subject to p >= 0, sum p = 1, n sum (p - 1/n)^2 <= B, by SLSQP from several starts."""
    n = len(losses)
    cons = [{"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones_like(p)},
            {"type": "ineq", "fun": lambda p: B - n * ((p - 1 / n) ** 2).sum(), "jac": lambda p: -2 * n * (p - 1 / n)}]
    best = -np.inf
    starts = [np.full(n, 1 / n), np.eye(n)[np.argmax(losses)] * 0.5 + 0.5 / n]
    for x0 in starts:
        with threadpool_limits(1):  # many BLAS threads on a tiny problem only fight for a small machine's cores
            res = optimize.minimize(lambda p: -p @ losses, x0, jac=lambda p: -losses, bounds=[(0, 1)] * n,
                                    constraints=cons, method="SLSQP", options={"ftol": 1e-13, "maxiter": 500})
        p = np.clip(res.x, 0, None)
        p /= p.sum()
        if n * ((p - 1 / n) ** 2).sum() <= B + 1e-6:
            best = max(best, float(p @ losses))
    return best


def _brute_force_dual(losses: np.ndarray, B: float) -> float:
    """min_eta eta + sqrt(1 + B) sqrt(mean((l - eta)_+^2)) by a dense grid, then a bounded 1-D search."""
    f = lambda eta: eta + math.sqrt(1 + B) * math.sqrt(np.mean(np.clip(losses - eta, 0, None) ** 2))  # noqa: E731
    lo = losses.min() - 10 * losses.std() / math.sqrt(B) - 1.0
    grid = np.linspace(lo, losses.max(), 4001)
    values = grid + math.sqrt(1 + B) * np.sqrt(np.mean(np.clip(losses[None, :] - grid[:, None], 0, None) ** 2, axis=1))
    k = int(np.argmin(values))
    res = optimize.minimize_scalar(f, bounds=(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]),
                                   method="bounded", options={"xatol": 1e-12})
    return min(float(res.fun), f(grid[k]))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("B", [0.05, 0.3, 1.0, 3.0, 8.0, 25.0])
def test_dual_matches_brute_force_on_n20(seed: int, B: float) -> None:
    rng = np.random.default_rng(seed)
    losses = rng.gamma(2.0, 1.0, size=20) if seed % 2 else rng.exponential(1.0, size=20) ** 2
    risk, w = robust_risk(torch.tensor(losses), B, "dual")
    assert float(risk) == pytest.approx(_brute_force_dual(losses, B), rel=1e-6, abs=1e-8)
    assert float(risk) == pytest.approx(_brute_force_worst_case(losses, B), rel=1e-4, abs=1e-6)
    eta = _dro.chi2_dual_eta(torch.tensor(losses), B)
    assert float(_dro.dual_value(torch.tensor(losses), B, eta)) == pytest.approx(float(risk), rel=1e-9)


@FAST
@given(loss_vectors, budgets, budgets)
def test_dual_is_above_mean_below_max_and_non_decreasing_in_B(losses, b1, b2) -> None:
    lo, hi = sorted((b1, b2))
    r_lo, _ = robust_risk(losses, lo, "dual")
    r_hi, _ = robust_risk(losses, hi, "dual")
    assert float(losses.mean()) - 1e-9 <= float(r_lo) <= float(r_hi) + 1e-9
    assert float(r_hi) <= float(losses.max()) + 1e-9
    if hi >= len(losses) - 1:  # the ball holds the point mass on the largest loss
        assert float(r_hi) == pytest.approx(float(losses.max()), rel=1e-9)


@FAST
@given(loss_vectors, st.floats(0.0, 1.0))
def test_dual_equals_closed_form_when_primal_weights_are_non_negative(losses, share) -> None:
    m, sd = float(losses.mean()), float(losses.std(unbiased=False))
    if sd < 1e-6:
        return
    B = share * (sd / (m - float(losses.min()))) ** 2  # largest B keeping 1 + sqrt(B) z_i >= 0 for all i
    dual, _ = robust_risk(losses, B, "dual")
    closed, _ = robust_risk(losses, B, "surrogate", eps=0.0, clip=False)
    assert float(dual) == pytest.approx(m + math.sqrt(B) * sd, rel=1e-9, abs=1e-12)
    assert float(closed) == pytest.approx(float(dual), rel=1e-9, abs=1e-12)
    reweighted, _ = robust_risk(losses, B, "reweight", eps=0.0)
    assert float(reweighted) == pytest.approx(float(dual), rel=1e-9, abs=1e-12)


def test_dual_gradient_is_the_worst_case_weights() -> None:
    losses = torch.tensor([0.1, 0.5, 2.0, 3.5, 0.2], dtype=torch.float64, requires_grad=True)
    risk, w = robust_risk(losses, 2.0, "dual")
    (grad,) = torch.autograd.grad(risk, losses)
    assert torch.allclose(grad, w) and float(w.sum()) == pytest.approx(1.0)
    assert float(w[0]) == 0.0  # the chi-square worst case drops the easiest samples here


# ------------------------------------------------------------------------------------------ weights
@FAST
@given(loss_vectors, budgets, st.sampled_from(["reweight", "dual"]))
def test_weights_are_a_distribution_inside_the_chi2_ball(losses, B, objective) -> None:
    _, p = robust_risk(losses, B, objective)
    n = len(losses)
    assert bool((p >= 0).all())
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    assert n * float(((p - 1 / n) ** 2).sum()) <= B + 1e-6


@FAST
@given(loss_vectors, budgets)
def test_surrogate_is_mean_plus_root_B_population_std_capped_at_max(losses, B) -> None:
    raw, w = robust_risk(losses, B, "surrogate", clip=False)
    expected = float(np.mean(losses.numpy())) + math.sqrt(B) * math.sqrt(float(np.var(losses.numpy())) + 1e-8)
    assert float(raw) == pytest.approx(expected, rel=1e-9)
    clipped, _ = robust_risk(losses, B, "surrogate")
    assert float(clipped) == pytest.approx(min(expected, float(losses.max())), rel=1e-9)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-9)
    exact, w = robust_risk(losses, B, "surrogate", eps=0.0, clip=False)
    if float(losses.var()) > 1e-12 and bool((w >= 0).all()):  # no weight clipped: reweighting is the closed form
        re, _ = robust_risk(losses, B, "reweight", eps=0.0)
        assert float(re) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


@FAST
@given(loss_vectors, budgets)
def test_reweighting_clips_negative_weights_and_renormalises(losses, B) -> None:
    arr = losses.numpy()
    raw = (1 + math.sqrt(B) * (arr - arr.mean()) / math.sqrt(arr.var() + 1e-8)) / len(arr)
    expected = np.clip(raw, 0, None) / np.clip(raw, 0, None).sum()
    risk, p = robust_risk(losses, B, "reweight")
    assert np.allclose(p.numpy(), expected, atol=1e-12)
    assert float(risk) == pytest.approx(float(expected @ arr), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_equal_losses_and_single_rows_give_finite_gradients(objective: str) -> None:
    for losses in (torch.full((8,), 0.7, requires_grad=True), torch.tensor([1.3], requires_grad=True)):
        risk, _ = robust_risk(losses, 0.5, objective)
        (grad,) = torch.autograd.grad(risk, losses)
        assert float(risk.detach()) == pytest.approx(float(losses.detach().mean()), abs=1e-3)
        assert bool(torch.isfinite(grad).all())


# ------------------------------------------------------------------------ translation and permutation
@FAST
@given(loss_vectors, budgets, st.floats(-5.0, 5.0), st.sampled_from(OBJECTIVES), st.randoms(use_true_random=False))
def test_translation_equivariance_and_permutation_invariance(losses, B, c, objective, rnd) -> None:
    base, w = robust_risk(losses, B, objective)
    shifted, _ = robust_risk(losses + c, B, objective)
    assert float(shifted) == pytest.approx(float(base) + c, rel=1e-7, abs=1e-7)
    perm = list(range(len(losses)))
    rnd.shuffle(perm)
    permuted, wp = robust_risk(losses[perm], B, objective)
    assert float(permuted) == pytest.approx(float(base), rel=1e-9, abs=1e-9)
    assert torch.allclose(wp, w[perm], atol=1e-9)


@FAST
@given(loss_vectors, budgets, st.sampled_from(OBJECTIVES), st.data())
def test_masked_rows_are_ignored(losses, B, objective, data) -> None:
    """Unlabelled rows (valid = False) must not change the risk, whatever loss they carry."""
    keep = torch.tensor(data.draw(st.lists(st.booleans(), min_size=len(losses), max_size=len(losses))))
    if int(keep.sum()) == 0:
        return
    garbage = torch.where(keep, losses, torch.full_like(losses, 1e3))
    masked, w = robust_risk(garbage, B, objective, valid=keep)
    alone, _ = robust_risk(losses[keep], B, objective)
    assert float(masked) == pytest.approx(float(alone), rel=1e-9, abs=1e-9)
    assert bool((w[~keep] == 0).all())


def test_bad_objective_and_budget_are_refused() -> None:
    with pytest.raises(ValueError):
        robust_risk(torch.ones(3), 0.1, "cvar")
    with pytest.raises(ValueError):
        robust_risk(torch.ones(3), -1.0, "dual")


# --------------------------------------------------------------------------------------- dependence
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
@FAST
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-3, 3)), min_size=3, max_size=40))
def test_spearman_matches_scipy_with_ties(pairs) -> None:
    a = torch.tensor([float(p[0]) for p in pairs])
    b = torch.tensor([p[1] for p in pairs])
    ours = _dro.spearman(a, b)
    ref = stats.spearmanr(a.numpy(), b.numpy()).statistic
    if ours is None:
        assert np.isnan(ref) or len(set(a.tolist())) == 1 or len(set(b.tolist())) == 1
    else:
        assert ours == pytest.approx(float(ref), abs=1e-9)


def test_copula_map_recovers_the_gaussian_correlation() -> None:
    assert _dro.copula_gamma(0.0) == 0.0
    assert _dro.copula_gamma(1.0) == pytest.approx(1.0) and _dro.copula_gamma(-1.0) == pytest.approx(-1.0)
    assert _dro.copula_gamma(0.5) == pytest.approx(2 * math.sin(math.pi / 12), rel=1e-12)
    rng = np.random.default_rng(0)
    for corr in (-0.6, 0.3, 0.8):
        z = rng.multivariate_normal([0, 0], [[1, corr], [corr, 1]], size=20000)
        # Monotone transforms (as losses are) leave the rank correlation, hence gamma, unchanged.
        r = _dro.spearman(torch.tensor(np.exp(z[:, 0])), torch.tensor(z[:, 1] ** 3))
        assert _dro.copula_gamma(r) == pytest.approx(corr, abs=0.008)


def test_dependence_estimator_smooths_with_an_ema_and_skips_thin_pairs() -> None:
    est = _dro.DependenceEstimator(3, momentum=0.9, min_samples=10)
    x = torch.arange(50, dtype=torch.float64)
    losses = torch.stack([x, x, -x], dim=1)
    valid = torch.ones(50, 3, dtype=torch.bool)
    valid[5:, 2] = False  # modality 2 present on 5 rows only: its pairs are skipped
    est.update(losses, valid)
    assert float(est.gamma[0, 1]) == pytest.approx(1.0) and float(est.gamma[0, 2]) == 0.0
    est.update(torch.stack([x, -x, x], dim=1), valid)
    assert float(est.gamma[0, 1]) == pytest.approx(0.9 * 1.0 + 0.1 * -1.0)
    assert torch.equal(est.gamma, est.gamma.T) and bool((torch.diagonal(est.gamma) == 1).all())


# ------------------------------------------------------------------------------------------ methods
BUDGET = TrainBudget(max_epochs=4, patience=4, batch_size=32, width=16)


def build_for_loss(name: str, **hp):
    """A method ready for ``loss`` on one batch of a toy split, without fitting (fields it lacks are dropped)."""
    plugin = registry.get("method", name)
    fields = {f.name for f in dataclasses.fields(plugin.cls.Hparams)}
    method = plugin.cls(toy_info(), plugin.cls.Hparams(**{k: v for k, v in hp.items() if k in fields}))
    torch.manual_seed(0)
    ctx = TrainContext.from_seed(0, BUDGET)
    train = toy_split(40, seed=1)
    method._start(train, train, ctx)
    method.net = method.build(BUDGET.width)
    batch = next(batches(train, 40, torch_generator(0)))
    return method, batch




def _fit(name: str, seed: int = 0, train=None, **hp):
    set_determinism(1)
    torch.manual_seed(seed)
    plugin = registry.get("method", name)
    method = plugin.cls(toy_info(), plugin.cls.Hparams(**hp))
    ctx = TrainContext.from_seed(seed, BUDGET)
    method.fit(train if train is not None else toy_split(90, seed=1), toy_split(30, seed=2, prefix="v"), ctx)
    return method, ctx


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_mm_dro_records_budget_dependence_and_weight_spread(objective: str) -> None:
    method, ctx = _fit("mm_dro", objective=objective)
    extras = method.extras()
    text = json.dumps(extras, allow_nan=False)
    assert len(text.encode()) < 20_000
    gamma = torch.tensor(extras["gamma"], dtype=torch.float64)
    assert gamma.shape == (3, 3) and torch.equal(gamma, gamma.T) and bool((gamma.abs() <= 1).all())
    assert extras["gamma_updates"] == len(ctx.epoch_log) - 1 > 0  # once per epoch after the warm-up
    assert extras["budget_B"] == pytest.approx(modality_budget([0.1] * 3, method._dep.gamma), rel=1e-4)
    assert 0.3 - 1e-9 <= extras["budget_B"] <= 0.9 + 1e-9
    epochs = extras["per_epoch"]
    assert all(len(v) == len(ctx.epoch_log) for v in epochs.values())
    assert epochs["B"][0] == pytest.approx(0.3)  # independent budget before the first estimate
    assert all(v >= 1.0 for v in epochs["weight_n_max"]) and all(v <= 1.0 for v in epochs["weight_n_min"])


def test_large_budget_reweighting_clips_weights_at_zero_during_training() -> None:
    method, _ = _fit("mm_dro", objective="reweight", rho=5.0, dependence="independent")
    spread = method.extras()["per_epoch"]
    assert method.budget_B == pytest.approx(15.0)
    assert max(spread["weight_zero_share"]) > 0 and min(spread["weight_n_min"]) >= 0


def test_independent_fallback_and_ef_budgets() -> None:
    mm, _ = _fit("mm_dro", dependence="independent", rho_by_modality={"img": 0.5})
    assert mm.budget_B == pytest.approx(0.7) and "gamma" not in mm.extras() and "aux" not in mm.net
    own, _ = _fit("ef_dro", rho_ef=0.37)
    assert own.budget_B == pytest.approx(0.37) and own.extras()["budget_B"] == pytest.approx(0.37)
    assert own.extras()["radius"] == "own" and "matched_budget" not in own.extras()
    probe_ind, _ = _fit("ef_dro", radius="probe_budget", dependence="independent", rho_by_modality={"img": 0.5})
    assert probe_ind.budget_B == pytest.approx(mm.budget_B)
    probe, _ = _fit("ef_dro", radius="probe_budget")
    assert probe.budget_B == pytest.approx(modality_budget([0.1] * 3, probe._dep.gamma))
    assert probe.extras()["gamma_updates"] > 0
    json.dumps(probe.extras(), allow_nan=False)


def _proba(method) -> torch.Tensor:
    test = toy_split(25, seed=3, prefix="t")
    test.mask[::4, 2] = False
    return method.predict_proba(test.x, test.mask)


def test_mm_dro_with_zero_radius_is_erm_of_its_own_network() -> None:
    """The same-network ERM control (suite row mm_dro+erm): with rho = 0 the budget is 0 in every epoch
    whatever gamma is estimated, and the fit equals a fit of the same network on the plain mean cross-entropy
    (the auxiliary heads, trained on the side, never move the predictor)."""
    mm, ctx = _fit("mm_dro", rho=0.0)
    extras = mm.extras()
    gamma = extras["gamma"]
    assert extras["gamma_updates"] > 0 and max(abs(gamma[i][j]) for i in range(3) for j in range(i + 1, 3)) > 0.01
    assert extras["per_epoch"]["B"] == [0.0] * len(ctx.epoch_log) and extras["budget_B_mean"] == 0.0
    plugin = registry.get("method", "mm_dro")
    set_determinism(1)
    torch.manual_seed(0)
    erm = plugin.cls(toy_info(), plugin.cls.Hparams(rho=0.0))
    erm.loss = lambda batch: torch.nn.functional.cross_entropy(erm.logits(batch.x, batch.mask), batch.y)
    erm_ctx = TrainContext.from_seed(0, BUDGET)
    erm.fit(toy_split(90, seed=1), toy_split(30, seed=2, prefix="v"), erm_ctx)
    assert erm_ctx.fit_summary["best_epoch"] == ctx.fit_summary["best_epoch"]
    assert torch.allclose(_proba(mm), _proba(erm), atol=1e-5)
    # The predictor of a fit with rho > 0 moves away from ERM (the control is not vacuous).
    robust, _ = _fit("mm_dro", rho=1.0)
    assert not torch.allclose(_proba(robust), _proba(mm), atol=1e-3)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_ef_dro_per_modality_network_is_mm_dro_network(dropout: float) -> None:
    """network="per_modality": ef_dro builds mm_dro's network in the same order, so at zero radius the two
    fits are the same ERM fit, bit for bit, with or without modality dropout."""
    mm, _ = _fit("mm_dro", rho=0.0, modality_dropout=dropout)
    ef, _ = _fit("ef_dro", network="per_modality", rho_ef=0.0, modality_dropout=dropout)
    main = {k: v for k, v in mm.net.state_dict().items() if not k.startswith("aux.")}
    assert main.keys() == ef.net.state_dict().keys()
    assert all(torch.equal(v, ef.net.state_dict()[k]) for k, v in main.items())
    assert torch.equal(_proba(mm), _proba(ef))
    flat, _ = _fit("ef_dro", rho_ef=0.0, modality_dropout=dropout)
    assert "fused" in flat.net and flat.n_parameters() != ef.n_parameters()


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_ef_dro_matched_radius_is_mm_dro_mean_budget_on_the_same_data_and_seed(dropout: float) -> None:
    """radius="matched" (spec "Controls the suite must run"): rho_EF = the mean over mm_dro's training epochs
    of its B, from the mm_dro fit this spec's own mm_dro run makes (same seed, same shared hyperparameters);
    the value and the rule are recorded, and ef_dro then trains at that constant radius."""
    for seed in (0, 1):
        mm, mm_ctx = _fit("mm_dro", seed=seed, modality_dropout=dropout)
        ef, ctx = _fit("ef_dro", seed=seed, radius="matched", modality_dropout=dropout)
        per_epoch = mm.extras()["per_epoch"]["B"]
        assert len(set(per_epoch)) > 1  # B moves with gamma, so the mean is not a single epoch's value
        matched = ef.extras()["matched_budget"]
        assert matched["rho_ef"] == mm.mean_budget() == pytest.approx(sum(per_epoch) / len(per_epoch), rel=1e-4)
        assert matched["mm_dro_B_per_epoch"] == per_epoch and matched["mm_dro_epochs_run"] == len(mm_ctx.epoch_log)
        assert matched["mm_dro_best_epoch"] == mm_ctx.fit_summary["best_epoch"]
        assert "mean over mm_dro's training epochs" in matched["rule"] == ef.extras()["radius_rule"]
        assert ef.budget_B == matched["rho_ef"] and set(ef.extras()["per_epoch"]["B"]) == {ef.extras()["budget_B"]}
        assert len(ctx.epoch_log) == ctx.fit_summary["epochs_run"]  # mm_dro's epochs are not logged as ef_dro's
        own, _ = _fit("ef_dro", seed=seed, rho_ef=matched["rho_ef"], modality_dropout=dropout)
        assert torch.equal(_proba(own), _proba(ef))  # the inner fit leaves ef_dro's own training untouched
        json.dumps(ef.extras(), allow_nan=False)


def test_matched_budget_on_mm_dro_network_with_a_constant_budget_is_mm_dro() -> None:
    """With gamma fixed at 0 mm_dro's B is constant, so ef_dro on mm_dro's network at the matched radius is
    mm_dro: the two differ in the budget only."""
    mm, _ = _fit("mm_dro", dependence="independent", rho_by_modality={"img": 0.5})
    ef, _ = _fit("ef_dro", dependence="independent", rho_by_modality={"img": 0.5}, radius="matched",
                 network="per_modality")
    assert ef.budget_B == pytest.approx(0.7, rel=1e-12)
    assert torch.allclose(_proba(mm), _proba(ef), atol=1e-5)


def test_unlabelled_rows_do_not_change_the_training_loss() -> None:
    for name in ("mm_dro", "ef_dro"):
        method, batch = build_for_loss(name, objective="dual", rho=0.5, rho_ef=0.5)
        hidden = batch.y.clone()
        hidden[::3] = -1
        keep = hidden >= 0
        with_unlabelled = method.loss(dataclasses.replace(batch, y=hidden, labeled=keep))
        only_labelled = method.loss(type(batch)({k: v[keep] for k, v in batch.x.items()}, batch.mask[keep],
                                                batch.y[keep], batch.labeled[keep]))
        assert float(with_unlabelled.detach()) == pytest.approx(float(only_labelled.detach()), rel=1e-6)


def test_auxiliary_heads_do_not_move_the_predictor_and_see_only_labelled_present_rows() -> None:
    method, batch = build_for_loss("mm_dro", rho=0.0)
    assert "aux" in method.net
    main = [p for k, p in method.net.named_parameters() if not k.startswith("aux.")]
    with_aux = torch.autograd.grad(method.loss(batch), main)
    plain = torch.nn.functional.cross_entropy(method.logits(batch.x, batch.mask), batch.y)
    for a, b in zip(with_aux, torch.autograd.grad(plain, main), strict=True):
        assert torch.allclose(a, b, atol=1e-7)
    split = toy_split(12, seed=4)
    split.mask[::3, 1] = False
    split.y[::4] = -1
    with torch.no_grad():
        losses, valid = method._unimodal_losses(split)
    assert losses.shape == (12, 3) and torch.equal(valid, split.mask & (split.y >= 0).unsqueeze(1))


def test_encoder_error_is_the_mean_positive_loss_increase_under_input_noise() -> None:
    method, batch = build_for_loss("mm_dro", dependence="independent", encoder_error_weight=1.0,
                                   encoder_error_noise=0.5)
    torch.set_grad_enabled(False)
    try:
        _check_encoder_error(method, batch)
    finally:
        torch.set_grad_enabled(True)


def _check_encoder_error(method, batch) -> None:
    enc = method._encode(batch.x)
    losses = _dro.per_sample_ce(method._head(enc, batch.mask), batch.y)
    state = method.ctx.generator.get_state()
    err = method._encoder_error(batch.x, batch.mask, enc, losses, batch.y)
    method.ctx.generator.set_state(state)
    expected = 0.0
    for j, m in enumerate(method.info.modalities):
        xk = batch.x[m.name] + 0.5 * torch.randn(tuple(batch.x[m.name].shape), generator=method.ctx.generator)
        noisy = list(enc)
        noisy[j] = method.net["enc"][m.name](xk)
        lk = _dro.per_sample_ce(method._head(noisy, batch.mask), batch.y)
        expected += float((lk - losses).clamp(min=0).mean())
    assert float(err) == pytest.approx(expected, rel=1e-5) and float(err) > 0


def test_modality_dropout_keeps_one_present_modality_and_zero_fills() -> None:
    method, batch = build_for_loss("mm_dro", modality_dropout=0.6)
    batch.mask[::4, 0] = False
    x, keep = method._train_inputs(batch)
    assert bool(keep.any(dim=1).all()) and not bool((keep & ~batch.mask).any())
    assert bool((keep != batch.mask).any())
    for j, name in enumerate(x):
        assert float(x[name][~keep[:, j]].abs().sum()) == 0.0


@pytest.mark.parametrize(("name", "hp"), [("mm_dro", {"rho": 0.0, "dependence": "independent"}),
                                          ("ef_dro", {"rho_ef": 0.0}),
                                          ("ef_dro", {"rho_ef": 0.0, "network": "per_modality"})])
def test_both_methods_train_on_the_dropped_inputs(name: str, hp: dict) -> None:
    """modality_dropout reaches the loss of mm_dro and of ef_dro (both networks): the training loss is the
    loss on the inputs and mask that dropout leaves, drawn from ctx.generator."""
    method, batch = build_for_loss(name, modality_dropout=0.5, **hp)
    state = method.ctx.generator.get_state()
    x, keep = method._train_inputs(batch)
    method.ctx.generator.set_state(state)
    with torch.no_grad():
        loss = float(method.loss(batch))
        dropped = float(torch.nn.functional.cross_entropy(method.logits(x, keep), batch.y))
        full = float(torch.nn.functional.cross_entropy(method.logits(batch.x, batch.mask), batch.y))
        off, _ = build_for_loss(name, **hp)
        off.net.load_state_dict(method.net.state_dict())
        assert float(off.loss(batch)) == pytest.approx(full, rel=1e-6)
    assert loss == pytest.approx(dropped, rel=1e-6) and loss != pytest.approx(full)


def test_encoder_error_extension_only_adds_a_non_negative_term() -> None:
    base, batch = build_for_loss("mm_dro", dependence="independent")
    extended, _ = build_for_loss("mm_dro", dependence="independent", encoder_error_weight=1.0,
                                 encoder_error_noise=0.5)
    extended.net.load_state_dict(base.net.state_dict())
    assert float(extended.loss(batch).detach()) > float(base.loss(batch).detach())


@pytest.mark.parametrize("name,bad", [("mm_dro", {"objective": "cvar"}), ("mm_dro", {"head": "attention"}),
                                      ("mm_dro", {"rho_by_modality": {"nope": 1.0}}), ("ef_dro", {"radius": "x"}),
                                      ("ef_dro", {"network": "late"}),
                                      ("ef_dro", {"dependence": "gaussian"}), ("mm_dro", {"rho": -0.1})])
def test_bad_hyperparameters_are_refused(name: str, bad: dict) -> None:
    with pytest.raises(ValueError):
        _fit(name, **bad)


def test_late_head_and_accuracy_stopping_variants_train() -> None:
    method, _ = _fit("mm_dro", head="late", early_stopping="accuracy", objective="dual")
    test = toy_split(10, seed=3, prefix="t")
    p = method.predict_proba(test.x, test.mask)
    assert torch.allclose(p.sum(dim=1), torch.ones(10), atol=1e-5)


@pytest.mark.parametrize(("name", "criterion", "recorded"), [
    ("mm_dro", None, "robust_risk"), ("ef_dro", None, "robust_risk"),
    ("mm_dro", "log_likelihood", "log_likelihood"), ("ef_dro", "accuracy", "accuracy"),
])
def test_early_stopping_criterion_is_the_robust_risk_by_default_and_is_recorded(name, criterion, recorded) -> None:
    """Spec 2.4 [INF]: early stopping on the robust validation objective (minus the robust risk of the
    validation cross-entropies); the benchmark's log-likelihood and accuracy are alternatives."""
    hp = {} if criterion is None else {"early_stopping": criterion}
    method, ctx = _fit(name, **hp)
    assert ctx.fit_summary["stopping_criterion"] == recorded == method.stopping_criterion
    scores = [e["val_score"] for e in ctx.epoch_log]
    assert ctx.fit_summary["best_val_score"] == max(scores) == scores[ctx.fit_summary["best_epoch"]]
    val = method.val_split
    proba = method.predict_proba(val.x, val.mask)
    mean_ll = float(torch.log(proba[torch.arange(len(val)), val.y]).mean())
    if recorded == "robust_risk":  # the worst case weighs the larger losses more: below the mean log-likelihood
        assert method.val_score() <= mean_ll + 1e-5
    elif recorded == "log_likelihood":
        assert method.val_score() == pytest.approx(mean_ll, rel=1e-5)


@pytest.mark.parametrize("hp", [{"radius": "matched"}, {"radius": "matched", "network": "per_modality"},
                                {"radius": "probe_budget"}, {"network": "per_modality"}])
def test_ef_dro_capacity_count_is_the_network_it_ends_with(hp: dict) -> None:
    """param_budget sizes ef_dro by its own network, not by the mm_dro it fits first for the matched radius."""
    from benchmark.capacity import n_parameters_at

    method, _ = _fit("ef_dro", **hp)
    cls = registry.get("method", "ef_dro").cls
    assert n_parameters_at(cls, toy_info(), cls.Hparams(**hp), BUDGET.width) == method.n_parameters()
