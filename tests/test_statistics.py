"""The statistics agree with the libraries' own results, and give the known answer on tables built to
have one (one method better by a fixed margin everywhere; all methods equal)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats
from statsmodels.stats.multitest import multipletests

from benchmark.statistics import critical_difference, friedman, mixed_model, pairwise_tests


def table(effects: dict[str, float], datasets: int = 8, seeds: int = 5, noise: float = 0.01, seed: int = 0):
    """Accuracy = dataset level + method effect + seed noise (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(datasets):
        level = rng.uniform(0.5, 0.8)
        for s in range(seeds):
            for m, e in effects.items():
                rows.append({"dataset": f"d{d}", "train_condition": "standard", "method": m, "seed": s,
                             "family": "clean", "accuracy": level + e + noise * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_pairwise_tests_match_scipy_and_statsmodels() -> None:
    t = table({"a": 0.0, "b": -0.01, "c": -0.03}, datasets=1)
    out = pairwise_tests(t, baseline="c")
    by = {m: g.set_index("seed")["accuracy"] for m, g in t.groupby("method")}
    best = out[out["reference"] == "best"].set_index("method")
    expected = [stats.ttest_rel(by[m], by["a"]).pvalue for m in ("b", "c")]
    assert np.allclose(best.loc[["b", "c"], "p"], expected)
    assert np.allclose(best.loc[["b", "c"], "p_holm"], multipletests(expected, method="holm")[1])
    d = by["c"] - by["a"]
    assert np.isclose(best.loc["c", "d_z"], d.mean() / d.std(ddof=1))
    assert best.loc["c", "significant"] and best.loc["c", "ci_high"] < 0


def test_friedman_with_a_method_better_everywhere_ranks_it_first_and_rejects() -> None:
    t = table({"best": 0.05, "b": 0.0, "c": 0.0, "d": 0.0})
    res = friedman(t)
    assert res["average_ranks"]["best"] == 1.0 and res["p"] < 0.01
    means = t.groupby(["dataset", "method"])["accuracy"].mean().unstack("method")
    expected = stats.friedmanchisquare(*[means[c] for c in means.columns])
    assert np.isclose(res["statistic"], expected.statistic) and np.isclose(res["p"], expected.pvalue)
    nemenyi = sp.posthoc_nemenyi_friedman(means.to_numpy())
    assert np.allclose(res["posthoc_p"].to_numpy(), nemenyi.to_numpy())
    assert np.allclose(friedman(t, posthoc="conover")["posthoc_p"].to_numpy(),
                       sp.posthoc_conover_friedman(means.to_numpy(), p_adjust="holm").to_numpy())


def test_friedman_with_all_methods_equal_finds_nothing() -> None:
    t = table({"a": 0.0, "b": 0.0, "c": 0.0}, noise=0.0)
    res = friedman(t)
    assert res["p"] == 1.0 and set(res["average_ranks"].values()) == {2.0}


def test_friedman_reports_the_blocks_it_left_out() -> None:
    t = table({"a": 0.0, "b": 0.0, "c": 0.01})
    t = t[~((t["dataset"] == "d3") & (t["method"] == "b"))]
    res = friedman(t)
    assert res["blocks_left_out"] == ["d3"] and len(res["blocks_used"]) == 7


def test_friedman_never_pools_training_conditions() -> None:
    t = table({"a": 0.0, "b": 0.01, "c": 0.02})
    both = pd.concat([t, t.assign(train_condition="labels[0.1]")])
    with pytest.raises(ValueError, match="per training condition"):
        friedman(both)
    res = friedman(both, train_condition="labels[0.1]")
    assert res["blocks_used"] == sorted(t["dataset"].unique()) and res["train_condition"] == "labels[0.1]"


def test_critical_difference_matches_demsar_table() -> None:
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for k = 3, 2.569 for k = 4.
    assert critical_difference(3, 10) == pytest.approx(2.343 * np.sqrt(3 * 4 / 60), abs=1e-3)
    assert critical_difference(4, 14) == pytest.approx(2.569 * np.sqrt(4 * 5 / 84), abs=1e-3)


def test_mixed_model_recovers_a_known_effect() -> None:
    t = table({"base": 0.0, "better": 0.04, "same": 0.0}, noise=0.005)
    res = mixed_model(t, baseline="base")
    assert res["converged"] and set(res["variance_components"]) == {"dataset", "seed", "method", "residual"}
    better, same = res["effects"]["better"], res["effects"]["same"]
    assert better["ci_low"] < 0.04 < better["ci_high"] and better["p"] < 1e-3
    assert same["ci_low"] < 0 < same["ci_high"]


def test_nemenyi_by_hand_is_scikit_posthocs() -> None:
    from benchmark.statistics import nemenyi_friedman

    rng = np.random.default_rng(0)
    for shape in ((7, 5), (14, 7), (3, 3)):
        values = rng.integers(0, 4, size=shape).astype(float)  # ties on purpose
        assert np.allclose(nemenyi_friedman(values), sp.posthoc_nemenyi_friedman(values).to_numpy(), rtol=1e-12,
                           atol=0)
