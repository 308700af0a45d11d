"""The claims scorecard: one value per run, one value per unit, the test the unit calls for, and a
catalogue whose suites exist and agree with each other."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark.claims import (
    MIN_DATASETS_FOR_WILCOXON,
    RUN_KEYS,
    at_least,
    by_unit,
    compare,
    family_value,
    scorecard,
)
from benchmark.suite_files import suite_file


class FakeResults:
    """The two attributes a claim reads: the tidy table and the valid records."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.ok = [object()]


def tidy(acc: dict[tuple[str, str, int], float], conditions: int = 3, noise: float = 0.0,
         seed: int = 0) -> FakeResults:
    """A tidy table with ``conditions`` test conditions of family "shift" per run, each run's accuracy
    ``acc[(method, dataset, seed)]`` plus per-condition noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for (method, dataset, s), a in acc.items():
        rows.append(dict(method=method, dataset=dataset, train_condition="standard", seed=s, condition="clean",
                         family="clean", split="test", metric="accuracy", status="ok", value=a,
                         run_id=f"{method}-{dataset}-{s}"))
        for c in range(conditions):
            rows.append(dict(method=method, dataset=dataset, train_condition="standard", seed=s,
                             condition=f"shift[{c}]", family="shift", split="test", metric="accuracy",
                             status="ok", value=a + noise * rng.standard_normal(), run_id=f"{method}-{dataset}-{s}"))
    return FakeResults(pd.DataFrame(rows))


def design(effect: float, n_datasets: int, n_seeds: int, rng: np.random.Generator, sd: float = 0.01
           ) -> dict[tuple[str, str, int], float]:
    acc = {}
    for d in range(n_datasets):
        base = rng.uniform(0.5, 0.9)
        for s in range(n_seeds):
            shared = rng.normal(0, sd)
            acc[("a", f"d{d}", s)] = base + effect + shared + rng.normal(0, sd)
            acc[("b", f"d{d}", s)] = base + shared + rng.normal(0, sd)
    return acc


def test_datasets_are_the_unit_and_the_test_is_scipys_wilcoxon() -> None:
    rng = np.random.default_rng(1)
    acc = design(0.02, 7, 5, rng)
    v = compare("a", "b", family_value("shift"), "shift accuracy")(tidy(acc))
    assert v.unit == "datasets" and v.n == 7 and "Wilcoxon" in v.test
    runs = pd.Series(acc).rename_axis(["method", "dataset", "seed"])
    per = runs.groupby(["method", "dataset"]).mean()
    d = (per["a"] - per["b"]).to_numpy()
    assert v.p == pytest.approx(stats.wilcoxon(d, alternative="greater").pvalue)
    assert v.effect == pytest.approx(d.mean())
    assert v.verdict == "supported"


def test_below_the_wilcoxon_threshold_a_t_test_across_datasets_is_named() -> None:
    rng = np.random.default_rng(2)
    acc = design(0.02, MIN_DATASETS_FOR_WILCOXON - 1, 4, rng)
    v = compare("a", "b", family_value("shift"), "shift accuracy")(tidy(acc))
    per = pd.Series(acc).rename_axis(["method", "dataset", "seed"]).groupby(["method", "dataset"]).mean()
    d = (per["a"] - per["b"]).to_numpy()
    assert v.unit == "datasets" and "t-test" in v.test
    assert v.p == pytest.approx(stats.ttest_1samp(d, 0, alternative="greater").pvalue)


def test_one_dataset_makes_seeds_the_unit_a_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    acc = design(0.03, 1, 5, rng)
    v = compare("a", "b", family_value("shift"), "shift accuracy")(tidy(acc))
    a = np.array([acc[("a", "d0", s)] for s in range(5)])
    b = np.array([acc[("b", "d0", s)] for s in range(5)])
    assert v.unit.startswith("seeds") and v.n == 5
    assert v.p == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    lo, hi = stats.t.interval(0.95, 4, loc=(a - b).mean(), scale=stats.sem(a - b))
    assert (v.low, v.high) == pytest.approx((lo, hi))


@settings(max_examples=25, deadline=None)
@given(conditions=st.integers(1, 12), n_datasets=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_more_conditions_per_run_never_add_units(conditions: int, n_datasets: int, seed: int) -> None:
    """The class of error the scorecard exists to avoid: correlated values (a run's conditions, a
    dataset's seeds) pooled as independent. However many conditions a run has, n is the number of
    datasets (or of seeds on one dataset)."""
    acc = design(0.01, n_datasets, 3, np.random.default_rng(seed))
    v = compare("a", "b", family_value("shift"), "x")(tidy(acc, conditions=conditions, noise=0.01, seed=seed))
    assert v.n == (n_datasets if n_datasets >= 2 else 3)


@settings(max_examples=25, deadline=None)
@given(effect=st.floats(-0.2, 0.2), seed=st.integers(0, 10_000))
def test_verdicts_follow_the_data_and_flip_with_the_rows(effect: float, seed: int) -> None:
    acc = design(effect, 7, 3, np.random.default_rng(seed), sd=0.002)
    results = tidy(acc)
    ab = compare("a", "b", family_value("shift"), "x")(results)
    ba = compare("b", "a", family_value("shift"), "x")(results)
    flipped = {"supported": "not supported", "not supported": "supported", "inconclusive": "inconclusive"}
    assert ba.verdict == flipped[ab.verdict]
    if abs(effect) > 0.05:  # far beyond the noise: every dataset agrees, Wilcoxon's p is 1/128
        assert ab.verdict == ("supported" if effect > 0 else "not supported")


def test_non_inferiority_reads_the_margin() -> None:
    rng = np.random.default_rng(4)
    close = design(-0.005, 7, 3, rng, sd=0.001)
    far = design(-0.08, 7, 3, rng, sd=0.001)
    check = compare("a", "b", family_value("shift"), "x", margin=0.02)
    assert check(tidy(close)).verdict == "supported"
    assert check(tidy(far)).verdict == "not supported"
    assert "non-inferiority" in check(tidy(close)).test


def test_a_bound_check_counts_runs_when_asked() -> None:
    acc = {("a", f"d{d}", s): 0.96 + 0.001 * s for d in range(3) for s in range(4)}
    v = at_least("a", family_value("shift"), 0.95, "coverage", unit="runs", margin=0.02, scale=1.0)(tidy(acc))
    assert v.unit == "runs" and v.n == 12 and v.verdict == "supported"
    v = at_least("a", family_value("shift"), 0.99, "coverage", unit="runs", scale=1.0)(tidy(acc))
    assert v.verdict == "not supported"


def test_missing_data_is_inconclusive_and_says_what_is_missing() -> None:
    v = compare("a", "c", family_value("shift"), "x")(tidy(design(0.1, 3, 3, np.random.default_rng(0))))
    assert v.verdict == "inconclusive" and "no paired runs of a and c" in v.used


def test_by_unit_keeps_one_value_per_dataset() -> None:
    idx = pd.MultiIndex.from_tuples([("d0", 0), ("d0", 1), ("d1", 0)], names=["dataset", "seed"])
    d, unit, test, names = by_unit(pd.Series([1.0, 3.0, 5.0], index=idx))
    assert list(d) == [2.0, 5.0] and unit == "datasets" and names == ["d0", "d1"] and test == "t"
    assert RUN_KEYS == ["method", "dataset", "train_condition", "seed"]


# The catalogue ----------------------------------------------------------------------------------------


def test_every_claim_reads_a_suite_that_loads_with_the_rows_it_compares() -> None:
    from benchmark.claim_catalogue import CLAIMS
    from benchmark.suites import load_suite

    for claim in CLAIMS:
        for name in filter(None, (claim.suite, claim.matched_suite)):
            suite = load_suite(name)  # validates every variant's hyperparameters against the method
            rows = {r.row for r in suite.rows()}
            assert claim.method in {r.name for r in suite.rows()} or claim.kind != "paper", (claim.key, name)
            assert rows, name


def test_matched_twins_differ_from_their_base_only_in_the_budget() -> None:
    from benchmark.claim_catalogue import CLAIMS
    from benchmark.suites import load_suite

    for base, twin in {(c.suite, c.matched_suite) for c in CLAIMS if c.matched_suite}:
        b, t = load_suite(base), load_suite(twin)
        assert t.param_budget is not None and b.param_budget is None, twin
        assert {r.row for r in t.rows()} <= {r.row for r in b.rows()}, twin
        if base != "full":
            assert t.datasets == b.datasets and t.test_conditions == b.test_conditions, twin
            assert t.training_conditions == b.training_conditions and set(t.seeds) <= set(b.seeds), twin


def test_known_answer_variants_are_the_suites_datasets() -> None:
    from benchmark.claim_catalogue import KNOWN_VARIANTS

    raw = tomllib.loads(suite_file("known_answers").read_text())
    listed = [{k: v for k, v in e.items() if k != "name"} for e in raw["datasets"]]
    assert listed == list(KNOWN_VARIANTS.values())


def test_scorecard_says_which_suite_to_run_when_records_are_missing() -> None:
    from benchmark.claim_catalogue import CLAIMS

    out = scorecard(CLAIMS[:2], lambda name: None)
    assert all(r.verdict.verdict == "inconclusive" for r in out)
    assert "python -m benchmark run --suite claim_robult" in out[0].verdict.used
    assert out[0].survives == "not run"


def test_a_matched_budget_suite_keeps_its_records_whatever_width_each_run_got(tmp_path) -> None:
    """With param_budget, every run's width is chosen to meet the budget: the scope must not filter on the
    suite's nominal width (it dropped every record of the claim suites' matched twins)."""
    from benchmark.scope import suite_scope

    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nmethods = ["early_fusion"]\ndatasets = ["synthetic_pid"]\nparam_budget = 5000\n'
                    '[budget]\nwidth = 64\nmax_epochs = 3\n')
    scope = suite_scope(str(path), tmp_path)
    assert "width" not in scope.budget and scope.budget["max_epochs"] == 3
    path.write_text(path.read_text().replace("param_budget = 5000\n", ""))
    assert suite_scope(str(path), tmp_path).budget["width"] == 64


def test_a_stale_record_never_decides_a_claim(runner_folder, monkeypatch) -> None:
    """Staleness is detected by ``results.load`` (tests/test_results.py); here: what it flags is left out."""
    import benchmark.results as results_module
    from benchmark.report.claims_page import fresh_results

    real_load = results_module.load
    suite = str(runner_folder / "runner.toml")
    before = fresh_results(suite, runner_folder)
    gone = before.ok[0].run_id

    def load_with_one_stale(folder, scope=None):
        res = real_load(folder, scope)
        res.stale[gone] = "method source changed"
        res.table.loc[res.table["run_id"] == gone, "stale"] = True
        return res

    monkeypatch.setattr(results_module, "load", load_with_one_stale)
    after = fresh_results(suite, runner_folder)
    assert len(after.records) == len(before.records) - 1 and gone not in set(after.table["run_id"])
