"""The across-dataset summaries (benchmark.aggregates) recomputed on the committed full-suite records with
the reference libraries: rliable (IQM, stratified bootstrap intervals, probability of improvement,
performance profiles) and baycomp (the Bayesian signed-rank test), within resampling error where both
sides resample; and known answers on tables built to have one.

rliable 1.2.0 requires arch < 8, and arch 7.2.0 calls pandas' private ``deprecate_kwarg`` with the
signature pandas 3 dropped (for the ``type`` argument of a GARCH result's plot); ``_rliable`` adapts that
one call while arch is imported, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import aggregates
from benchmark.aggregates import (
    aggregates_markdown,
    bayesian_comparison,
    cells,
    performance_profiles,
    summarise,
)

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ["labels[0.1]", "standard", "train_missing[0.3]"]
BASELINE = "late_fusion"
Z = 4.0  # tolerance in Monte Carlo standard errors: the comparisons are seeded, so pass or fail is fixed


def _rliable():  # noqa: ANN202 - the module pair
    import pandas.util._decorators as decorators

    original = decorators.deprecate_kwarg

    def compatible(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if args and isinstance(args[0], str):  # arch 7.2's (old_name, new_name): pandas 3 wants the class first
            return original(FutureWarning, *args, **kwargs)
        return original(*args, **kwargs)

    decorators.deprecate_kwarg = compatible
    try:
        import arch.bootstrap  # noqa: F401
    finally:
        decorators.deprecate_kwarg = original
    from rliable import library, metrics

    return library, metrics


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    """The long table of the committed full suite, as benchmark.report.write builds it."""
    from benchmark.results import load
    from benchmark.scope import suite_scope
    from benchmark.selection import select
    from benchmark.statistics import long_table

    scope = suite_scope("full", None)
    selected, _ = select(load(scope.results_dir, scope), scope.selection_rule)
    return long_table(selected.table, selected.primary_metrics())


def matrix(data: aggregates.Cells, method: str) -> np.ndarray:
    """rliable's layout: (runs, tasks)."""
    return np.stack(data.scores[method], axis=1)


def bound_tolerance(width: np.ndarray, resamples_a: int, resamples_b: int) -> np.ndarray:
    """Z standard errors of the difference of two percentile bounds (2.5% / 97.5%) from independent
    bootstraps of sizes a and b: the quantile's error is sqrt(p(1-p)/B) / density, the density at the
    bound of a near-normal bootstrap distribution phi(1.96) / sigma, sigma = width / 3.92."""
    sigma = width / 3.92
    return Z * sigma * np.sqrt(0.025 * 0.975) / 0.0584 * np.sqrt(1 / resamples_a + 1 / resamples_b) + 1e-9


def _iqm(x: np.ndarray) -> np.ndarray:
    """rliable's aggregate_iqm (scipy.stats.trim_mean(x, 0.25, axis=None), checked equal to it in the
    test) without scipy's per-call overhead, so that rliable's bootstrap runs 2,000 resamples in seconds."""
    v = np.sort(x, axis=None)
    cut = int(0.25 * v.size)
    return np.array([v[cut:v.size - cut].mean()])


def test_iqm_and_its_stratified_interval_match_rliable(long: pd.DataFrame) -> None:
    library, metrics = _rliable()
    data = cells(long, "standard")
    assert len(data.datasets) == 7 and not data.left_out
    ours = summarise(data, None, "standard", resamples=20_000)
    scores = {m: matrix(data, m) for m in data.methods}
    expected = np.array([metrics.aggregate_iqm(scores[m]) for m in data.methods])
    for m in data.methods[:2]:
        assert _iqm(scores[m])[0] == pytest.approx(metrics.aggregate_iqm(scores[m]), rel=1e-12)
    np.random.seed(aggregates.SEED)  # rliable's resampling reads numpy's global generator
    _, intervals = library.get_interval_estimates(scores, _iqm, reps=2_000)
    ref = np.array([intervals[m][:, 0] for m in data.methods]).T  # (2, methods)
    np.testing.assert_allclose(ours.iqm, expected, rtol=1e-12)
    tol = bound_tolerance(ref[1] - ref[0], 2_000, 20_000)
    assert np.all(np.abs(ours.iqm_ci - ref) <= tol), (ours.iqm_ci - ref) / tol
    assert np.all((ours.iqm_ci[0] <= ours.iqm) & (ours.iqm <= ours.iqm_ci[1]))


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's probability_of_improvement for (runs, tasks) arrays, without its per-task scipy call
    (checked equal to it below), so that rliable's bootstrap can run 2,000 resamples in seconds."""
    sign = np.sign(x[:, None, :] - y[None, :, :]).mean(axis=(0, 1))
    return np.array([np.mean((1 + sign) / 2)])


def test_probability_of_improvement_matches_rliable(long: pd.DataFrame) -> None:
    library, metrics = _rliable()
    for condition in CONDITIONS:
        data = cells(long, condition)
        ours = summarise(data, BASELINE, condition)
        for k, method in enumerate(data.methods):
            if method == BASELINE:
                assert np.isnan(ours.improvement[k])
                continue
            x, y = matrix(data, method), matrix(data, BASELINE)
            expected = metrics.probability_of_improvement(x, y)
            assert ours.improvement[k] == pytest.approx(expected, abs=1e-12)
            assert _improvement(x, y)[0] == pytest.approx(expected, abs=1e-12)
    data = cells(long, "standard")
    ours = summarise(data, BASELINE, "standard", resamples=20_000)
    others = [m for m in data.methods if m != BASELINE]
    np.random.seed(aggregates.SEED)
    _, intervals = library.get_interval_estimates(
        {m: (matrix(data, m), matrix(data, BASELINE)) for m in others}, _improvement, reps=2_000)
    ref = np.array([intervals[m][:, 0] for m in others]).T
    mine = ours.improvement_ci[:, [data.methods.index(m) for m in others]]
    tol = bound_tolerance(ref[1] - ref[0], 2_000, 20_000) + 1 / (2 * 25 * 7)  # plus one step of the lattice
    assert np.all(np.abs(mine - ref) <= tol), (mine - ref) / tol
    assert np.all((mine >= 0) & (mine <= 1))


def test_performance_profiles_match_rliable(long: pd.DataFrame) -> None:
    library, _ = _rliable()
    taus = np.linspace(0, 1, 101)
    for condition in CONDITIONS:
        data = cells(long, condition)
        ours = performance_profiles(data, taus)
        for method in data.methods:
            expected = library.score_distributions(matrix(data, method), taus)
            got = ours.loc[ours["method"] == method, "fraction"].to_numpy()
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_signed_rank_probabilities_match_baycomp(long: pd.DataFrame) -> None:
    """Within sampling error of baycomp's own run; exactly on baycomp's own posterior draws; and the draws
    follow the Dirichlet(prior, 1, ..., 1) posterior (the pseudo-observation's mean weight)."""
    import inspect

    import baycomp

    prior = inspect.signature(baycomp.SignedRankTest.sample).parameters["prior"].default  # baycomp's 0.5
    samples, ref_samples = 50_000, 5_000
    for condition in ("standard", "train_missing[0.3]"):
        data = cells(long, condition)
        ours = bayesian_comparison(data, BASELINE, samples=samples).set_index("method")
        y = np.array([s.mean() for s in data.scores[BASELINE]])
        weights = np.r_[prior, np.ones(len(y))]
        w = np.random.RandomState(aggregates.SEED).dirichlet(weights, ref_samples)  # baycomp's draws
        products = (w[:, :, None] * w[:, None, :]).reshape(ref_samples, -1)
        for method in ours.index:
            x = np.array([s.mean() for s in data.scores[method]])
            ref = np.array(baycomp.SignedRankTest.probs(x, y, rope=0.01, nsamples=ref_samples,
                                                        random_state=aggregates.SEED))
            same_draws = aggregates._signed_rank_regions((y - x)[None, :], 0.01, products)[0]
            np.testing.assert_allclose(same_draws, ref, rtol=0, atol=1e-12)
            got = ours.loc[method, ["p_better", "p_rope", "p_worse"]].to_numpy(float)
            p = (got + ref) / 2
            tol = Z * np.sqrt(p * (1 - p) * (1 / samples + 1 / ref_samples)) + 1e-3
            assert np.all(np.abs(got - ref) <= tol), (condition, method, got, ref)
    first = np.sqrt(aggregates._posterior_weights(7, aggregates.PRIOR, samples)[:, 0])  # w_0 of each draw
    alpha = prior + 7
    sd = np.sqrt(prior * 7 / (alpha ** 2 * (alpha + 1)) / samples)
    assert abs(first.mean() - prior / alpha) < Z * sd


def known(effects: dict[str, float], datasets: int = 6, seeds: int = 5, noise: float = 0.002) -> pd.DataFrame:
    """Accuracy = dataset level + method effect + seed noise, in the long table's columns."""
    rng = np.random.default_rng(1)
    rows = []
    for d in range(datasets):
        level = rng.uniform(0.6, 0.8)
        for s in range(seeds):
            for m, e in effects.items():
                rows.append({"dataset": f"d{d}", "train_condition": "standard", "method": m, "seed": s,
                             "family": "clean", "accuracy": level + e + noise * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_known_answers_better_everywhere_and_equal() -> None:
    t = known({"base": 0.0, "better": 0.05, "twin": 0.0})
    t.loc[t["method"] == "twin", "accuracy"] = t.loc[t["method"] == "base", "accuracy"].to_numpy()
    data = cells(t, "standard")
    s = summarise(data, "base", "standard")
    k = {m: i for i, m in enumerate(data.methods)}
    assert s.improvement[k["better"]] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.improvement_ci[:, k["better"]], 1.0, atol=1e-12)
    assert s.improvement[k["twin"]] == pytest.approx(0.5, abs=1e-12)
    bayes = bayesian_comparison(data, "base").set_index("method")
    assert bayes.loc["better", "p_better"] > 0.9 and bayes.loc["twin", "p_rope"] == 1.0
    assert s.iqm[k["better"]] == pytest.approx(s.iqm[k["base"]] + 0.05, abs=0.005)


def test_a_methods_interval_does_not_depend_on_the_others() -> None:
    t = known({"base": 0.0, "a": 0.01, "b": -0.02}, noise=0.02)
    full = summarise(cells(t, "standard"), "base", "standard")
    fewer = summarise(cells(t[t["method"] != "b"], "standard"), "base", "standard")
    keep = [full.methods.index(m) for m in fewer.methods]
    assert np.array_equal(full.iqm_ci[:, keep], fewer.iqm_ci)
    assert np.array_equal(full.improvement_ci[:, keep], fewer.improvement_ci, equal_nan=True)


def test_missing_runs_are_resampled_within_their_dataset_and_missing_datasets_left_out() -> None:
    t = known({"base": 0.0, "a": 0.01}, noise=0.02)
    t = t[~((t["method"] == "a") & (t["dataset"] == "d0") & (t["seed"] == 4))]  # 4 seeds there
    t = t[~((t["method"] == "a") & (t["dataset"] == "d5"))]  # no run there
    data = cells(t, "standard")
    assert data.left_out == ["d5"] and len(data.scores["a"][0]) == 4
    s = summarise(data, "base", "standard")
    a = data.methods.index("a")
    assert s.runs[a] == 24
    assert s.iqm[a] == pytest.approx(float(t[(t["method"] == "a")]["accuracy"].pipe(
        lambda v: np.sort(v)[6:18].mean())))
    lines = "\n".join(aggregates_markdown(t, "base", "standard"))
    assert "Left out (a method has no run there): d5." in lines


def test_markdown_states_its_procedure_and_is_identical_in_another_process(long: pd.DataFrame,
                                                                           tmp_path: Path) -> None:
    lines = aggregates_markdown(long, BASELINE, "standard")
    text = "\n".join(lines)
    assert f"{aggregates.RESAMPLES:,} resamples" in text and str(aggregates.SEED) in text
    assert "SignedRankTest" in text and "hierarchical test" in text and "ROPE ±1 point" in text
    data = cells(long, "standard")
    s = summarise(data, BASELINE, "standard")
    k = data.methods.index("robult")
    row = next(line for line in lines if line.startswith("| robult |"))
    assert f"{100 * s.iqm[k]:.1f} [{100 * s.iqm_ci[0, k]:.1f}, {100 * s.iqm_ci[1, k]:.1f}]" in row
    assert np.all((s.iqm_ci >= 0) & (s.iqm_ci <= 1))
    known({"base": 0.0, "a": 0.01, "b": -0.02}, noise=0.02).to_csv(tmp_path / "t.csv", index=False)
    t = pd.read_csv(tmp_path / "t.csv")
    code = ("import sys, pandas as pd; from benchmark.aggregates import aggregates_markdown; "
            "print('\\n'.join(aggregates_markdown(pd.read_csv(sys.argv[1]), 'base', 'standard')))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.csv")], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout == "\n".join(aggregates_markdown(t, "base", "standard")) + "\n"
