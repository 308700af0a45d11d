"""conformal_shapley: the spec's unit-testable properties (section 4.8) and the plug-in's own guarantees."""

from __future__ import annotations

import importlib
import itertools
import json
import math

import numpy as np
import pytest
import torch
from helpers import toy_info, toy_split
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark import registry
from benchmark.contracts import TrainBudget, TrainContext
from benchmark.seeding import set_determinism

METHOD = registry.get("method", "conformal_shapley").cls
shapley = importlib.import_module("benchmark.plugins_methods._shapley")  # the method's shared blocks
conformal = importlib.import_module("benchmark.plugins_methods._conformal")
BUDGET = TrainBudget(max_epochs=3, patience=2, batch_size=32, width=16)
FAST = settings(max_examples=40, deadline=None)


def fit(seed: int = 0, n_train: int = 90, **hparams):
    set_determinism(1)
    torch.manual_seed(seed)
    method = METHOD(toy_info(), METHOD.Hparams(**hparams))
    ctx = TrainContext.from_seed(seed, BUDGET)
    method.fit(toy_split(n_train, seed=1), toy_split(30, seed=2, prefix="v"), ctx)
    return method


@pytest.fixture(scope="module")
def fitted():
    return fit()


def value_tables(max_m: int = 5):
    """Random value tables (n, 2^M) with val(empty) = 0."""
    return st.integers(1, max_m).flatmap(lambda m: st.tuples(
        st.just(m), st.integers(1, 4), st.integers(0, 2**32 - 1)))


def random_table(m: int, n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 1 << m))
    v[:, 0] = 0.0
    return v


# 1. Efficiency --------------------------------------------------------------------------------------

@FAST
@given(value_tables())
def test_exact_shapley_is_efficient(case) -> None:
    m, n, seed = case
    v = random_table(m, n, seed)
    phi = shapley.exact_shapley(v)
    assert np.allclose(phi.sum(axis=1), v[:, -1])


@FAST
@given(value_tables(), st.integers(1, 6))
def test_permutation_shapley_is_efficient_and_exact_with_every_permutation(case, t: int) -> None:
    m, n, seed = case
    v = random_table(m, n, seed)
    value_of = {b: v[:, b] for b in range(1, 1 << m)}
    perms = np.stack([np.random.default_rng(seed + i).permutation(m) for i in range(t)])
    assert np.allclose(shapley.permutation_shapley(value_of, perms, n).sum(axis=1), v[:, -1])
    every = np.array(list(itertools.permutations(range(m)))) if m <= 4 else None
    if every is not None:
        assert np.allclose(shapley.permutation_shapley(value_of, every, n), shapley.exact_shapley(v))


def test_fitted_shapley_values_sum_to_the_full_coalitions_value(fitted) -> None:
    sel = fitted._val_split.labeled
    vx = {k: v[sel] for k, v in fitted._val_split.x.items()}
    values = fitted._values(vx, fitted._val_split.mask[sel], fitted._val_split.y[sel], list(range(1, 8)))
    phi = fitted._shapley(values, int(sel.sum()))
    assert np.allclose(phi.sum(axis=1), values[7])
    assert fitted.phi_cal.shape == (45, 3) and np.isfinite(fitted.phi_cal).all()


# 2. Null player and symmetry ------------------------------------------------------------------------

@FAST
@given(value_tables(), st.data())
def test_a_modality_no_coalition_uses_gets_zero(case, data) -> None:
    m, n, seed = case
    null = data.draw(st.integers(0, m - 1))
    v = random_table(m, n, seed)
    for b in range(1 << m):
        v[:, b] = v[:, b & ~(1 << null)]  # val(S + null) = val(S)
    assert np.allclose(shapley.exact_shapley(v)[:, null], 0.0)


@FAST
@given(st.integers(2, 5), st.integers(0, 2**32 - 1), st.data())
def test_modalities_with_identical_contributions_get_equal_values(m: int, seed: int, data) -> None:
    a, b = data.draw(st.lists(st.integers(0, m - 1), min_size=2, max_size=2, unique=True))
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(3, 1 << m))  # val depends on S only through S minus {a, b} and |S & {a, b}|
    v = np.zeros((1, 1 << m))
    for s in range(1, 1 << m):
        rest = s & ~(1 << a) & ~(1 << b)
        v[0, s] = base[(s >> a & 1) + (s >> b & 1), rest]
    v[0, 0] = 0.0
    phi = shapley.exact_shapley(v)
    assert np.isclose(phi[0, a], phi[0, b])


# 3. Marginal coverage -------------------------------------------------------------------------------

@pytest.mark.parametrize(("n_cal", "alpha", "rule"), [(39, 0.1, "ceil"), (50, 0.1, "floor"), (99, 0.05, "ceil")])
def test_split_conformal_coverage_over_500_repetitions(n_cal: int, alpha: float, rule: str) -> None:
    rng = np.random.default_rng(7)
    reps = 500
    covered = 0
    for _ in range(reps):
        phi = rng.standard_t(3, size=n_cal + 1)
        lo, hi = conformal.marginal_interval(phi[:-1], alpha, rule)
        covered += lo <= phi[-1] <= hi
    mc = 3 * math.sqrt(alpha * (1 - alpha) / reps)
    assert 1 - alpha - mc <= covered / reps <= 1 - alpha + 2 / (n_cal + 2) + mc


@FAST
@given(st.integers(2, 400), st.floats(0.01, 0.5))
def test_exact_coverage_of_the_ranks(n_cal: int, alpha: float) -> None:
    """For continuous exchangeable values P(covered) = (u - l) / (n + 1) exactly. "floor" always gives
    >= 1 - alpha; the draft's "ceil" can fall short by less than 1 / (n + 1)."""
    for rule in ("floor", "ceil"):
        lo, hi = conformal.conformal_ranks(n_cal, alpha, rule)
        cover = (hi - lo) / (n_cal + 1)
        assert cover <= 1 - alpha + 2 / (n_cal + 1) + 1e-9
        assert cover >= 1 - alpha - (0 if rule == "floor" else 1 / (n_cal + 1)) - 1e-9


def test_upper_end_is_infinite_when_the_rank_exceeds_n_and_the_code_clamps_it() -> None:
    phi = np.arange(10.0)  # n_cal = 10 < 2 / alpha - 1 for alpha = 0.05
    lo, hi = conformal.marginal_interval(phi, 0.05)
    assert lo == 0.0 and hi == math.inf
    assert conformal.marginal_interval(phi, 0.05, clamp_upper=True) == (0.0, 9.0)
    # l = ceil(101 * 0.05) = 6, u = ceil(101 * 0.95) = 96: the 6th and 96th smallest (1-based ranks)
    assert conformal.conformal_ranks(100, 0.1) == (6, 96)
    assert conformal.marginal_interval(np.arange(100.0), 0.1) == (5.0, 95.0)
    assert conformal.conformal_ranks(100, 0.1, "floor") == (5, 96)


def test_p_values() -> None:
    rng = np.random.default_rng(0)
    phi = rng.normal(0.3, 1.0, size=200)
    assert math.isclose(conformal.t_test_pvalue(phi), stats.ttest_1samp(phi, 0.0, alternative="greater").pvalue,
                        rel_tol=1e-9)
    assert conformal.conformal_pvalue(phi) == (1 + int((phi <= 0).sum())) / 201
    assert conformal.t_test_pvalue(np.full(5, -1.0)) == 1.0 and conformal.conformal_pvalue(np.ones(9)) == 0.1


# 4. Quantile fit ------------------------------------------------------------------------------------

@FAST
@given(st.integers(5, 120), st.floats(0.02, 0.98), st.integers(0, 2**32 - 1))
def test_constant_omega_without_the_kernel_gives_the_empirical_quantile(n: int, tau: float, seed: int) -> None:
    target = np.random.default_rng(seed).normal(size=n)
    k = n * tau
    if abs(k - round(k)) < 1e-6:  # the tau-quantile is unique only when n * tau is not an integer
        return
    for intercept, lam in ((True, 1e-2), (False, 1e-9)):
        fit_ = conformal.fit_kernel_quantile(None, np.ones((n, 1)), target, tau, 1e-2, lam, intercept=intercept)
        h = fit_.predict(None, np.ones((3, 1)))
        assert np.allclose(h, np.sort(target)[math.ceil(k) - 1], atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(st.integers(30, 150), st.floats(0.01, 0.99), st.integers(0, 2**32 - 1))
def test_kernel_quantile_fit_keeps_the_quantile_share(n: int, tau: float, seed: int) -> None:
    """With the unpenalised intercept, #(below h) / n <= tau <= #(at or below h) / n."""
    rng = np.random.default_rng(seed)
    omega = rng.normal(size=(n, 2))
    target = omega[:, 0] + rng.normal(size=n)
    ny = conformal.NystroemRBF(omega[: min(n, 20)], 0.5, 1e-2)
    z = ny(omega)
    h = conformal.fit_kernel_quantile(z, omega, target, tau, 1e-2, 1e-2).predict(z, omega)
    r = target - h
    assert (r < -1e-7).mean() <= tau + 1e-9 and tau - 1e-9 <= (r <= 1e-7).mean()


def test_nystroem_features_reproduce_the_kernel_on_the_landmarks() -> None:
    pts = np.random.default_rng(0).normal(size=(15, 2))
    ny = conformal.NystroemRBF(pts, 0.5, 1e-9)
    z = ny(pts)
    assert np.allclose(z @ z.T, ny.kernel(pts), atol=1e-5)


def test_conditional_intervals_nest_and_validation_coverage_is_recorded(fitted) -> None:
    test = toy_split(25, seed=3, prefix="t")
    omega = fitted._omega_of(test.x, test.mask)
    for q in (1, 2, 3):
        lower, upper = fitted._bounds(q, omega)
        assert lower.shape == (25, 3) and bool((lower <= upper).all())
    ex = fitted.extras()
    assert len(ex["validation_marginal_coverage"]) == 3 and all(0 <= c <= 1 for c in ex["validation_marginal_coverage"])


# 5. Selection ---------------------------------------------------------------------------------------

@FAST
@given(st.integers(1, 6), st.integers(0, 7), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_selection_rule(m: int, q: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, m))
    available = rng.random((n, m)) < 0.7
    bits = shapley.select_modalities(scores, available, q)
    chosen = ((bits[:, None] >> np.arange(m)) & 1).astype(bool)
    assert (chosen.sum(axis=1) <= q).all()
    assert (scores[chosen] > 0).all() and available[chosen].all()
    eligible = available & (scores > 0)
    for i in range(n):  # the top ones: nothing left out beats something chosen, and none is left out needlessly
        if chosen[i].any():
            assert (scores[i][eligible[i] & ~chosen[i]] <= scores[i][chosen[i]].min()).all()
        assert chosen[i].sum() == min(q, eligible[i].sum())
    everything = shapley.select_modalities(np.abs(scores) + 0.1, np.ones_like(available), max(q, m))
    assert (everything == (1 << m) - 1).all()
    assert (shapley.select_modalities(scores, available, 0) == 0).all()


def test_q_zero_predicts_the_trivial_predictor() -> None:
    method = fit(q=0)
    test = toy_split(25, seed=3, prefix="t")
    p = method.predict_proba(test.x, test.mask)
    y1 = torch.tensor([int(i[1:]) % 3 for i in method.fit_part_ids])  # toy_split: y = index % 3
    freq = torch.bincount(y1, minlength=3).float() / len(y1)
    assert torch.allclose(p, freq.expand(25, -1), atol=1e-5)
    assert method.extras()["q"] == 0 and set(method.extras()["last_predict_call"]["selected_bits"]) == {0}


def test_predict_uses_the_selected_coalitions_model_and_only_present_modalities() -> None:
    method = fit(selection_bound="upper", q=2)  # the upper bound selects something on noise data
    test = toy_split(25, seed=3, prefix="t")
    mask = test.mask.clone()
    mask[::2, 0] = False
    p = method.predict_proba(test.x, mask)
    bits = np.array(method.extras()["last_predict_call"]["selected_bits"])
    avail = (mask.numpy() * (1 << np.arange(3))).sum(axis=1)
    assert (bits & ~avail == 0).all() and (bits != 0).any()
    assert all(bin(int(b)).count("1") <= 2 for b in bits)
    xz = test.with_inputs(test.x, mask).x
    for i, b in enumerate(bits):
        row = {k: v[i : i + 1] for k, v in xz.items()}
        expect = method.models.log_proba(row, mask[i : i + 1], [int(b)])[0].softmax(dim=1)
        assert torch.allclose(p[i : i + 1], expect, atol=1e-6)


# The plug-in's own guarantees ----------------------------------------------------------------------

def test_calibration_and_training_parts_are_disjoint_and_cover_the_labelled_training_split(fitted) -> None:
    cal, fit_part = set(fitted.calibration_ids), set(fitted.fit_part_ids)
    assert not cal & fit_part and cal | fit_part == set(toy_split(90, seed=1).ids) and len(cal) == 45


def test_coalition_models_are_independent_of_the_stack_they_train_in() -> None:
    """Per-coalition seeds and early stopping: a coalition trained with others equals it trained alone."""
    # prefixes of one permutation only; q = 0 without the path selects nothing, so nothing is trained lazily
    alone = fit(shapley_estimator="permutation", n_permutations=1, q=0, selection_path=False)
    together = fit()
    test = toy_split(25, seed=3, prefix="t")
    shared = sorted(alone.models.where)
    a = alone.models.log_proba(test.x, test.mask, shared)
    b = together.models.log_proba(test.x, test.mask, shared)
    assert len(shared) == 3 and torch.allclose(a, b, atol=1e-5)


def test_lazily_trained_coalitions_do_not_depend_on_the_order_they_are_needed() -> None:
    m1 = fit(shapley_estimator="permutation", n_permutations=1, q=0, selection_path=False)
    m2 = fit(shapley_estimator="permutation", n_permutations=1, q=0, selection_path=False)
    missing = [b for b in range(1, 8) if b not in m1.models.where]
    test = toy_split(10, seed=3, prefix="t")
    first = m1.models.log_proba(test.x, test.mask, missing)
    second = m2.models.log_proba(test.x, test.mask, missing[::-1]).flip(0)
    assert torch.equal(first, second)
    assert m1.extras()["coalitions_trained_lazily"] == len(missing) == 4


def test_fast_masked_surrogate_mode_runs_and_is_recorded() -> None:
    method = fit(coalition_models="masked_surrogate")
    test = toy_split(25, seed=3, prefix="t")
    p = method.predict_proba(test.x, test.mask)
    assert p.shape == (25, 3) and torch.allclose(p.sum(1), torch.ones(25), atol=1e-5)
    ex = method.extras()
    assert ex["coalition_models"] == "masked_surrogate" and ex["coalitions_trained_at_fit"] == 0


def test_lambda_tuning_picks_a_grid_value() -> None:
    method = fit(tune_lambdas=True, lambda_grid=(1e-2, 1.0), cv_folds=2, q=1)
    assert tuple(method.lambdas) in set(itertools.product((1e-2, 1.0), repeat=2))
    assert len(method.extras()["lambda_cv"]) == 4


def test_extras_are_small_json_and_carry_the_record(fitted) -> None:
    big = toy_split(600, seed=4, prefix="b")
    fitted.predict_proba(big.x, big.mask)
    small = toy_split(7, seed=5, prefix="s")
    fitted.predict_proba(small.x, small.mask)
    ex = fitted.extras()
    text = json.dumps(ex, allow_nan=False)
    assert len(text.encode()) < 20_000
    assert ex["largest_predict_call"]["n"] == 600 and ex["last_predict_call"]["n"] == 7
    for key in ("marginal_intervals", "t_test_pvalues", "conformal_pvalues", "validation_marginal_coverage",
                "validation_selection_path", "coalition_models", "shapley_estimator", "selection_bound", "q"):
        assert key in ex
    assert [r["q"] for r in ex["validation_selection_path"]] == [0, 1, 2, 3]


def test_evaluate_extras_gives_scorable_per_sample_arrays(fitted) -> None:
    test = toy_split(20, seed=3, prefix="t")
    out = fitted.evaluate_extras(test.x, test.mask)
    path = out["selection_path"]
    assert path["pred"].shape == (20, 4) and path["columns"] == [0, 1, 2, 3]
    col = path["columns"].index(fitted.q)
    assert np.array_equal(path["pred"][:, col], fitted.predict_proba(test.x, test.mask).argmax(1).numpy())
    marg = out["marginal_coverage"]
    assert marg["value_by_label"].shape == (20, 3, 3) and marg["lower"].shape == (20, 3)
    values = fitted._values(test.x, test.mask, test.y, list(range(1, 8)))
    phi = fitted._shapley(values, 20)
    assert np.allclose(marg["value_by_label"][np.arange(20), test.y.numpy()], phi)


def test_selection_picks_the_informative_modalities_far_more_often() -> None:
    """synthetic_pid with the label in m0 and m1 (redundantly) and m2 drowned in noise: over four seeds,
    each informative modality is selected at least four times as often as the uninformative one."""
    set_determinism(1)
    data = registry.get("dataset", "synthetic_pid").cls(n=1200, noise=[0.3, 0.3, 30.0], redundant=1.0, unique=0.0,
                                                        synergy=0.0).load()
    cls = registry.get("method", "conformal_shapley").cls
    test = data.splits["test"].without_labels()
    counts = np.zeros(3)
    for seed in range(4):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            method = cls(data.info, cls.Hparams())
            ctx = TrainContext.from_seed(seed, TrainBudget(max_epochs=10, patience=3, width=32))
            method.fit(data.splits["train"], data.splits["val"], ctx)
            method.predict_proba(test.x, test.mask)
        counts += method.extras()["largest_predict_call"]["modality_counts"]
    assert counts[0] >= 4 * max(counts[2], 1) and counts[1] >= 4 * max(counts[2], 1), counts


@pytest.mark.parametrize(("mode", "recorded"), [("exact", "per_coalition_log_likelihood"),
                                                 ("masked_surrogate", "log_likelihood")])
def test_coalition_models_stop_on_the_validation_log_likelihood(mode: str, recorded: str) -> None:
    set_determinism(1)
    torch.manual_seed(0)
    method = METHOD(toy_info(), METHOD.Hparams(**({} if mode == "exact" else {"coalition_models": mode})))
    ctx = TrainContext.from_seed(0, BUDGET)
    method.fit(toy_split(90, seed=1), toy_split(30, seed=2, prefix="v"), ctx)
    assert ctx.fit_summary["stopping_criterion"] == recorded


def test_per_coalition_stopping_keeps_each_coalitions_best_log_likelihood() -> None:
    blocks = importlib.import_module("benchmark.plugins_methods._coalitions")
    torch.manual_seed(0)
    bank = blocks.CoalitionMLPs([1, 2, 3], [3, 4], 8, 3, [11, 12, 13])
    inputs, y = torch.randn(40, 7), torch.arange(40) % 3
    y_removed = torch.where(torch.arange(40) < 10, torch.full_like(y, -1), y)  # a removed label never counts
    stopper = blocks.PerCoalitionStopping(bank, inputs, y_removed, patience=2)
    assert stopper.criterion == "per_coalition_log_likelihood"
    stopper()
    with torch.no_grad():
        logp = torch.log_softmax(bank(inputs), dim=2)
    expect = logp[:, torch.arange(10, 40), y[10:]].mean(dim=1)
    assert torch.allclose(stopper.best, expect, atol=1e-6)


# The selection bound (issue 20: the authors' code selects on the upper end) ----------------------------

def test_the_default_ranks_by_the_upper_level_of_the_selected_q(fitted) -> None:
    """Default selection_bound is "upper": predict_proba selects by h_j^{1 - alpha/2q}, as conditional_calibrate
    in the authors' code; the lower level alpha/2q is the variant."""
    assert METHOD.Hparams().selection_bound == "upper" and fitted.hparams.selection_bound == "upper"
    q = max(fitted.q, 1)
    assert all(f.tau == pytest.approx(1 - fitted.hparams.alpha / (2 * q)) for f in fitted.quantiles.fits(q, "upper"))
    assert all(f.tau == pytest.approx(fitted.hparams.alpha / (2 * q)) for f in fitted.quantiles.fits(q, "lower"))
    test = toy_split(25, seed=3, prefix="t")
    fitted.predict_proba(test.x, test.mask)
    scores = fitted.quantiles.predict(fitted.q, "upper", fitted._omega_of(test.x, test.mask)) if fitted.q else None
    expect = (shapley.select_modalities(scores, test.mask.numpy(), fitted.q) if fitted.q
              else np.zeros(25, dtype=np.int64))
    assert fitted.extras()["last_predict_call"]["selected_bits"] == expect.tolist()
    assert fitted.extras()["selection_bound"] == "upper"


@FAST
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.floats(0.01, 1.0))
def test_the_two_levels_are_symmetric_and_both_the_median_at_alpha_one_and_q_one(q: int, seed: int,
                                                                                 alpha: float) -> None:
    rng = np.random.default_rng(seed)
    omega = rng.normal(size=(40, 2))
    phi = rng.normal(size=(40, 3)) + omega[:, :1]
    cq = conformal.ConditionalQuantiles(conformal.NystroemRBF(omega[:10], 0.5, 1e-2), omega, phi, alpha,
                                        (1e-2, 1e-2), True)
    lo, hi = cq.levels(q)
    assert math.isclose(lo + hi, 1.0) and lo <= hi
    one = conformal.ConditionalQuantiles(cq.nystroem, omega, phi, 1.0, (1e-2, 1e-2), True)
    assert one.levels(1) == (0.5, 0.5)
    new = rng.normal(size=(15, 2))
    a, b = one.predict(1, "lower", new), one.predict(1, "upper", new)
    assert np.allclose(a, b)
    available = rng.random((15, 3)) < 0.8
    assert np.array_equal(shapley.select_modalities(a, available, 1), shapley.select_modalities(b, available, 1))


def test_upper_and_lower_rules_select_the_same_modalities_at_alpha_one_and_q_one() -> None:
    """Issue 20: at alpha = 1 and q = 1 both rules read the median, so the fitted method selects the same."""
    lower = fit(alpha=1.0, q=1, selection_bound="lower")
    upper = fit(alpha=1.0, q=1, selection_bound="upper")
    test = toy_split(40, seed=3, prefix="t")
    mask = test.mask.clone()
    mask[::3, 1] = False
    omega = lower._omega_of(test.x, mask)
    a, b = lower._select(1, omega, mask.numpy()), upper._select(1, omega, mask.numpy())
    assert np.array_equal(a, b)
    assert torch.allclose(lower.predict_proba(test.x, mask), upper.predict_proba(test.x, mask))


# The test record (evaluate_extras, scored by the runner) ---------------------------------------------

def test_evaluate_extras_records_selected_vs_full_every_coalition_and_the_selection_summary(fitted) -> None:
    execution = importlib.import_module("benchmark.execution")
    test = toy_split(30, seed=3, prefix="t")
    mask = test.mask.clone()
    mask[::4, 2] = False
    out = fitted.evaluate_extras(test.x, mask)
    xz = test.with_inputs(test.x, mask).x
    chosen_by_predict = fitted.predict_proba(test.x, mask).argmax(1).numpy()
    bits = np.array(fitted.extras()["last_predict_call"]["selected_bits"])

    svf = out["selected_vs_full"]
    assert svf["columns"] == ["selected", "full"] and np.array_equal(svf["pred"][:, 0], chosen_by_predict)
    avail = (mask.numpy() * (1 << np.arange(3))).sum(axis=1)
    for i in range(30):  # "full" = the model of the coalition of the sample's present modalities
        row = {k: v[i : i + 1] for k, v in xz.items()}
        assert svf["pred"][i, 1] == fitted.models.log_proba(row, mask[i : i + 1], [int(avail[i])])[0].argmax()

    coal = out["coalition_accuracy"]
    assert coal["columns"] == list(range(8))
    logp = fitted.models.log_proba(xz, mask, list(range(8)))
    assert np.array_equal(coal["pred"], logp.argmax(dim=2).T.numpy())
    full_rows = avail == 7
    assert np.array_equal(coal["pred"][full_rows, 7], svf["pred"][full_rows, 1])

    s = out["selection_summary"]["values"]
    sizes = np.array([bin(int(b)).count("1") for b in bits])
    assert s["selection_bound"] == "upper" and s["q"] == fitted.q
    assert math.isclose(s["mean_selected"], sizes.mean()) and math.isclose(s["abstention_rate"], (bits == 0).mean())
    assert [r["q"] for r in s["path"]] == [0, 1, 2, 3] and s["path"][0]["abstention_rate"] == 1.0
    assert all(r["mean_selected"] <= r["q"] for r in s["path"])
    first_selected, first_ranked = out["first_selected"]["values"], out["first_ranked"]["values"]
    assert math.isclose(sum(first_selected.values()), 1.0) and math.isclose(sum(first_ranked.values()), 1.0)
    if fitted.q >= 1:  # nothing selected <=> the top present modality's score is not positive
        assert math.isclose(first_selected["none"], s["abstention_rate"])
    scores = fitted.quantiles.predict(s["rank_q"], "upper", fitted._omega_of(xz, mask))
    top = np.argmax(np.where(mask.numpy(), scores, -np.inf), axis=1)
    for j, name in enumerate(("a", "b", "img")):
        assert math.isclose(s["modality_selected_share"][name], ((bits >> j) & 1).mean())
        assert math.isclose(first_ranked[name], (top == j).mean())
        assert first_selected[name] <= first_ranked[name] + 1e-12
        if fitted.q >= 1:  # the first selected modality is one of the selected ones
            assert first_selected[name] <= ((bits >> j) & 1).mean() + 1e-12
    assert s["marginal_nominal"] == pytest.approx(0.95)
    assert s["conditional_nominal"] == pytest.approx(1 - 0.05 / s["rank_q"]) and s["rank_q"] == max(fitted.q, 1)

    cond = out["conditional_coverage"]
    lo, hi = fitted._bounds(s["rank_q"], fitted._omega_of(xz, mask))
    assert np.array_equal(cond["lower"], lo) and np.array_equal(cond["upper"], hi)

    scored = execution.score_method_extras(out, test.y.numpy())
    json.dumps(scored, allow_nan=False)
    assert scored["selection_summary"] == json.loads(json.dumps(s)) and scored["first_ranked"] == first_ranked
    assert scored["selected_vs_full"]["accuracy"][0] == pytest.approx((chosen_by_predict == test.y.numpy()).mean())
    assert len(scored["coalition_accuracy"]["accuracy"]) == 8
    assert len(scored["conditional_coverage"]["coverage"]) == 3 and len(scored["marginal_coverage"]["coverage"]) == 3


def test_the_one_informative_modality_is_selected_first() -> None:
    """synthetic_pid with the label in m0 only (m1, m2 drowned in noise): m0 is the first selected modality
    of at least 90% of the test samples, under the default (upper) rule."""
    set_determinism(1)
    data = registry.get("dataset", "synthetic_pid").cls(n=900, noise=[0.3, 30.0, 30.0], redundant=1.0, unique=0.0,
                                                        synergy=0.0).load()
    test = data.splits["test"].without_labels()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        method = METHOD(data.info, METHOD.Hparams())
        method.fit(data.splits["train"], data.splits["val"],
                   TrainContext.from_seed(0, TrainBudget(max_epochs=10, patience=3, width=32)))
    first = method.evaluate_extras(test.x, test.mask)["first_selected"]["values"]
    assert first["m0"] >= 0.9, first
