"""The statistics page's numbers, recomputed on the committed records of the full suite (results/runs, read
by ``benchmark.results.load``) with independent code and the reference libraries: scipy (Friedman,
Wilcoxon, t), scikit-posthocs (Nemenyi), statsmodels (Holm), Demšar's (2006) table of q_alpha and his
formula for Iman and Davenport's F, and MultiBench's robustness helpers as its eval_scripts write them.
Every comparison goes through ``agree``, and each test also checks that ``agree`` rejects the suite's
statistic perturbed by one part in a million: a cross-check that cannot fail checks nothing."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from benchmark.leaderboard import per_run
from benchmark.report.statistics_page import _mixed_lines
from benchmark.report.write import mean_ranks
from benchmark.results import load
from benchmark.scope import suite_scope
from benchmark.selection import select
from benchmark.statistics import (
    friedman_tests,
    holm_by_block,
    logit_interval,
    long_table,
    mixed_model,
    noninferiority,
    pairwise_tests,
    signed_rank,
    spread_tests,
)

REPO = Path(__file__).resolve().parent.parent
FAMILIES = ("clean", "missing", "noise", "covariate")
#: Demšar (2006), Table 5(a): q_0.05 of the Nemenyi test for k = 2 .. 10 classifiers.
Q_005 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
DECIMALS = 9  # the page's stated rounding before ranking


def agree(got: object, expected: object, rtol: float = 1e-9) -> bool:
    """Equal to rounding: relative 1e-9 (absolute 1e-12 near zero), NaN where NaN."""
    return bool(np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=1e-12,
                            equal_nan=True))


def check(pairs: list[tuple[str, object, object]], rtol: float = 1e-9) -> None:
    """Every (name, suite's value, reference) agrees, and would not with the suite's value perturbed by a
    part in a million (or ten times the tolerance, where that is looser)."""
    bad = [name for name, got, ref in pairs if not agree(got, ref, rtol)]
    assert not bad, bad
    step = max(1e-6, 10 * rtol)
    for name, got, ref in pairs:
        value = np.asarray(got, dtype=float)
        if not np.isfinite(value).any():
            continue
        assert not agree(value * (1 + step) + step * np.isfinite(value), ref, rtol), f"{name}: perturbation passes"


@pytest.fixture(scope="module")
def committed():
    results = load(REPO / "results", suite_scope("full", REPO / "results"))
    assert len(results.records) >= 1000, "the committed full suite"
    selected, _ = select(results, "clean_val")
    return selected, long_table(selected.table, selected.primary_metrics())


def _means(selected) -> pd.DataFrame:
    """Per (training condition, family, dataset, method): the mean over seeds of each run's score, computed
    here from the tidy table: the clean primary metric, or a family's mean accuracy over its conditions."""
    t = selected.table[selected.table["split"] == "test"]
    t = t.assign(**{c: t[c].astype(str) for c in ("dataset", "train_condition", "method", "family", "metric")})
    primary = selected.primary_metrics()
    clean = t[(t["family"] == "clean") & (t["metric"] == t["dataset"].map(primary))]
    other = t[t["family"].isin(FAMILIES[1:]) & (t["metric"] == "accuracy")]
    per_run = other.groupby(["train_condition", "family", "dataset", "method", "run_id"], observed=True)["value"].mean()
    runs = pd.concat([clean.set_index(["train_condition", "family", "dataset", "method", "run_id"])["value"], per_run])
    return runs.groupby(level=[0, 1, 2, 3]).mean().unstack("method")


def test_rank_tests_match_scipy_scikit_posthocs_statsmodels_and_demsar(committed) -> None:
    selected, long = committed
    means = _means(selected)
    got = friedman_tests(long, FAMILIES)
    pairs = []
    for (cond, fam), res in got.items():
        m = means.xs((cond, fam), level=[0, 1]).dropna(axis=1, how="all").dropna().round(DECIMALS)
        n, k = m.shape
        assert res["blocks_used"] == sorted(m.index) and res["methods"] == sorted(m.columns) and n == 7
        chi2 = stats.friedmanchisquare(*m.to_numpy().T)
        f = (n - 1) * chi2.statistic / (n * (k - 1) - chi2.statistic)  # Demšar (2006), eq. 3
        ranks = stats.rankdata(-m.to_numpy(), axis=1).mean(axis=0)
        nemenyi = sp.posthoc_nemenyi_friedman(m.to_numpy()).to_numpy()
        raw = {}
        for a, b in itertools.combinations(range(k), 2):
            d = m.iloc[:, a].to_numpy() - m.iloc[:, b].to_numpy()
            raw[(m.columns[a], m.columns[b])] = 1.0 if (d == 0).all() else stats.wilcoxon(d).pvalue
        holm = dict(zip(raw, multipletests(list(raw.values()), method="holm")[1], strict=True))
        w = res["wilcoxon"].set_index(["method", "other"])
        tag = f"{cond}/{fam}"
        pairs += [(f"{tag} chi2", res["statistic"], chi2.statistic), (f"{tag} p", res["p"], chi2.pvalue),
                  (f"{tag} F", res["iman_davenport"][0], f),
                  (f"{tag} p(F)", res["iman_davenport"][1], stats.f.sf(f, k - 1, (k - 1) * (n - 1))),
                  (f"{tag} ranks", [res["average_ranks"][c] for c in m.columns], ranks),
                  (f"{tag} nemenyi", res["posthoc_p"].loc[m.columns, m.columns].to_numpy(), nemenyi),
                  (f"{tag} wilcoxon", [w.loc[key, "p"] for key in raw], list(raw.values())),
                  (f"{tag} wilcoxon-holm", [w.loc[key, "p_holm"] for key in raw], list(holm.values()))]
        # The CD against Demšar's printed q (three decimals).
        cd = Q_005[k] * math.sqrt(k * (k + 1) / (6 * n))
        assert res["critical_difference"] == pytest.approx(cd, rel=2e-4)
        assert res["critical_difference"] * 1.001 != pytest.approx(cd, rel=2e-4)
    check(pairs)


def test_signed_rank_is_scipys_with_ties_and_zeros() -> None:
    rng = np.random.default_rng(0)
    for n in (5, 7, 8, 13):
        rows = 60 if n < 13 else 6  # with ties scipy enumerates 2**n sign flips per row: n = 13 is slow
        a = rng.integers(0, 5, size=(rows, n)) / 4.0  # ties and zero differences on purpose
        b = rng.integers(0, 5, size=(rows, n)) / 4.0
        a[0] = b[0] + np.arange(1, n + 1) / 10  # no ties: scipy's exact distribution
        keep = (a != b).any(axis=1)
        statistic, p = signed_rank(a[keep], b[keep])
        ref = [stats.wilcoxon(x, y) for x, y in zip(a[keep], b[keep], strict=True)]
        check([(f"n={n} statistic", statistic, [r.statistic for r in ref]), (f"n={n} p", p, [r.pvalue for r in ref])])


def test_holm_by_block_is_statsmodels() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(300) ** 3
    p[rng.random(300) < 0.1] = 1.0
    block = rng.integers(0, 40, 300)
    expected = np.empty(300)
    for b in np.unique(block):
        expected[block == b] = multipletests(p[block == b], method="holm")[1]
    check([("holm", holm_by_block(p, block), expected)])


def test_noninferiority_is_a_one_sided_paired_t_test_with_holm(committed) -> None:
    _, long = committed
    clean = long[long["family"] == "clean"]
    got = noninferiority(pairwise_tests(clean, None), margin=0.01)
    p_raw, p_expected, blocks = [], [], []
    for (d, c), part in clean.groupby(["dataset", "train_condition"]):
        scores = part.pivot(index="seed", columns="method", values="accuracy")
        best = scores.mean().idxmax()
        mine = got[(got["dataset"] == d) & (got["train_condition"] == c)].set_index("method")
        assert mine.loc[best, "best"] and mine.loc[best, "noninferior"] and mine["best"].sum() == 1
        block = []
        for m in scores.columns.drop(best):
            diff = (scores[m] - scores[best]).to_numpy()
            if np.allclose(diff, diff[0]):
                ref = 0.0 if diff[0] > -0.01 else 1.0
            else:
                ref = stats.ttest_1samp(diff + 0.01, 0.0, alternative="greater").pvalue
            p_raw.append(mine.loc[m, "p"])
            block.append((m, ref))
            lo, hi = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff)) if not np.allclose(
                diff, diff[0]) else (diff.mean(), diff.mean())
            assert agree([mine.loc[m, "ci_low"], mine.loc[m, "ci_high"]], [lo, hi])
        p_expected += [r for _, r in block]
        adjusted = multipletests([r for _, r in block], method="holm")[1]
        blocks += [(mine.loc[m, "p_holm"], a) for (m, _), a in zip(block, adjusted, strict=True)]
        # Far behind is never marked; the mark is exactly Holm's rejection.
        far = scores.mean() < scores[best].mean() - 0.05
        assert not mine.loc[far[far].index, "noninferior"].any()
    check([("p", p_raw, p_expected), ("p_holm", [g for g, _ in blocks], [e for _, e in blocks])], rtol=1e-7)
    assert not got.loc[~got["best"], "noninferior"].astype(bool).all()  # five seeds do not prove everything


def test_logit_interval_stays_inside_and_is_the_delta_method() -> None:
    rng = np.random.default_rng(2)
    for n in (2, 3, 5):
        for _ in range(200):
            v = np.clip(rng.beta(rng.uniform(0.2, 30), rng.uniform(0.2, 3), size=n), 0, 1)
            mean, lo, hi = logit_interval(v)
            if v.std() == 0:
                assert lo == hi == mean
                continue
            assert 0 <= lo <= mean <= hi <= 1
            se = stats.sem(v)
            q = stats.t.ppf(0.975, n - 1)
            half = q * se / (mean * (1 - mean))
            assert agree([lo, hi], special.expit(special.logit(mean) + np.array([-half, half])))
    assert np.isnan(logit_interval(np.array([0.7]))[1])


def test_spread_is_per_cell_over_seeds_tested_over_datasets(committed) -> None:
    selected, _ = committed
    got = spread_tests(selected.table, "late_fusion")
    t = selected.table
    acc = t[(t["split"] == "test") & (t["metric"] == "accuracy")]
    acc = acc.assign(**{c: acc[c].astype(str) for c in ("dataset", "train_condition", "condition", "method")})
    expected_p, got_p, expected_holm, got_holm = [], [], [], []
    for cond, part in acc.groupby("train_condition"):
        sds = {}
        for (d, m), cells in part.groupby(["dataset", "method"]):
            sds[(d, m)] = np.mean([np.std(g["value"].to_numpy(), ddof=1) for _, g in cells.groupby("condition")])
        methods = sorted({m for _, m in sds} - {"late_fusion"})
        datasets = sorted({d for d, _ in sds})
        raw = []
        mine = got[got["train_condition"] == cond].set_index("method")
        assert list(mine.index) == methods
        for m in methods:
            x = np.array([sds[(d, m)] for d in datasets])
            y = np.array([sds[(d, "late_fusion")] for d in datasets])
            raw.append(stats.wilcoxon(x, y).pvalue)
            got_p += [mine.loc[m, "sd"], mine.loc[m, "baseline_sd"], mine.loc[m, "ratio"]]
            expected_p += [np.median(x), np.median(y), np.median(x / y)]
        got_p += list(mine["p"])
        expected_p += raw
        got_holm += list(mine["p_holm"])
        expected_holm += list(multipletests(raw, method="holm")[1])
    check([("p", got_p, expected_p), ("p_holm", got_holm, expected_holm)])


def test_spread_is_not_fooled_by_differences_between_conditions() -> None:
    """Method ``shifty`` changes a lot from condition to condition and little from seed to seed; ``noisy``
    the other way round. Pooling every value (Brown-Forsythe over conditions) calls shifty spread out."""
    rng = np.random.default_rng(3)
    rows = []
    for d in range(8):
        for cond in range(6):
            for seed in range(5):
                for method, level, sd in (("base", 0.8, 0.01), ("shifty", 0.5 + 0.08 * cond, 0.01),
                                          ("noisy", 0.8, 0.05)):
                    rows.append({"split": "test", "metric": "accuracy", "dataset": f"d{d}",
                                 "train_condition": "standard", "condition": f"c{cond}", "method": method, "seed": seed,
                                 "value": level + sd * rng.standard_normal()})
    out = spread_tests(pd.DataFrame(rows), "base").set_index("method")
    assert out.loc["noisy", "p_holm"] < 0.05 and out.loc["noisy", "ratio"] > 3
    assert out.loc["shifty", "p_holm"] > 0.05 and 0.5 < out.loc["shifty", "ratio"] < 2


def test_ties_share_their_rank_in_the_summary_tables_whatever_the_float_rounding() -> None:
    a, b = 0.1 + 0.2, 0.3  # the same score reached two ways: 0.30000000000000004 and 0.3
    assert a != b
    table = pd.DataFrame({"train_condition": "labels[0.1]", "method": ["x", "y", "z", "x", "y", "z"],
                          "dataset": ["d1"] * 3 + ["d2"] * 3, "clean_primary": [a, b, 0.1, 0.9, 0.8, 0.7]})
    ranks = mean_ranks(table)["labels[0.1]"]
    assert ranks["x"] == (1.5 + 1) / 2 and ranks["y"] == (1.5 + 2) / 2 and ranks["z"] == 3


def test_a_mixed_model_that_did_not_converge_prints_no_p_value_and_no_interval(committed) -> None:
    _, long = committed
    fit = mixed_model(long, "late_fusion", train_condition="standard")
    assert "method" in fit["variance_components"] and fit["n"] == 350
    text = "\n".join(_mixed_lines({**fit, "converged": False, "effects": {m: {"effect": e["effect"]} for m, e in
                                                                           fit["effects"].items()}}, "late_fusion",
                                  "standard"))
    assert "did not converge" in text and "| p |" not in text and "[" not in text.split("did not converge")[1]
    with pytest.raises(ValueError, match="per training condition"):
        mixed_model(long, "late_fusion")


def _multibench_relative(curve: list[float]) -> float:
    """``relative_robustness_helper`` of MultiBench's eval_scripts/robustness.py, as written there."""
    area = 0
    for i in range(len(curve) - 1):
        area += (curve[i] + curve[i + 1]) * 0.1 / 2
    return area


def _multibench_effective(curve: list[float], baseline: list[float]) -> float:
    """``effective_robustness_helper`` of MultiBench's eval_scripts/robustness.py."""
    f, lf = np.array(curve), np.array(baseline)
    return float(np.sum(f - (lf + (f[0] - lf[0]))))


def test_relative_and_effective_robustness_are_multibenchs(committed) -> None:
    selected, _ = committed
    runs = per_run(selected, "late_fusion").set_index("run_id")
    by_id = {r.run_id: r for r in selected.ok}

    def curves(record) -> dict[str, dict[str, list[float]]]:
        out: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for key, cond in record.conditions.items():
            if cond.get("severity") is not None:
                out.setdefault(cond["family"], {}).setdefault(cond["curve"], []).append(
                    (float(cond["severity"]), record.metrics[key]["accuracy"]))
        clean = record.metrics["clean"]["accuracy"]
        return {f: {c: [clean] + [a for _, a in sorted(pts)] for c, pts in cs.items()} for f, cs in out.items()}

    got, expected = [], []
    sample = runs[runs["method"] == "robult"].groupby(["dataset", "train_condition"]).head(1)
    for run_id, row in sample.iterrows():
        base_id = runs[(runs["method"] == "late_fusion") & (runs["dataset"] == row["dataset"])
                       & (runs["train_condition"] == row["train_condition"]) & (runs["seed"] == row["seed"])].index[0]
        mine, base = curves(by_id[run_id]), curves(by_id[base_id])
        for fam, cs in mine.items():
            got += [row[f"rr_{fam}"], row[f"er_{fam}"]]
            expected += [np.mean([_multibench_relative(c) for c in cs.values()]),
                         np.mean([_multibench_effective(cs[k], base[fam][k]) for k in cs])]
    assert len(got) > 40
    check([("rr and er", got, expected)])


def test_the_critical_difference_figure_is_per_condition_and_the_same_bytes_whatever_the_hash_seed(tmp_path) -> None:
    script = (
        "import sys\nfrom pathlib import Path\nfrom benchmark import figures\nfrom benchmark.results import load\n"
        "from benchmark.scope import suite_scope\nfrom benchmark.selection import select\n"
        "r = select(load(Path(sys.argv[1]), suite_scope('full', Path(sys.argv[1]))), 'clean_val')[0]\n"
        "m = figures.scripts()['fig_03_critical_difference']\nm.draw(r, Path(sys.argv[2]))\n"
        "import matplotlib.pyplot as plt\n")
    drawing = [subprocess.Popen([sys.executable, "-c", script, str(REPO / "results"), str(tmp_path / seed)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("0", "1")]  # at once
    for proc in drawing:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    outs = [(tmp_path / seed / "fig_03_critical_difference.png").read_bytes() for seed in ("0", "1")]
    assert outs[0] == outs[1]


def test_the_mixed_model_is_the_formula_interfaces(committed) -> None:
    import statsmodels.formula.api as smf

    _, long = committed
    part = long[(long["family"] == "clean") & (long["train_condition"] == "labels[0.1]")]
    part = part.assign(seed=part["seed"].astype(str))
    ref = smf.mixedlm("accuracy ~ C(method, Treatment('late_fusion'))", part, groups=part["dataset"],
                      re_formula="1", vc_formula={"seed": "0 + C(seed)", "method": "0 + C(method)"}).fit(
        reml=True, method=["powell", "lbfgs"])
    got = mixed_model(long, "late_fusion", train_condition="labels[0.1]")
    assert got["converged"] and ref.converged
    names = {n.split("[T.")[1].rstrip("]"): n for n in ref.params.index if n.startswith("C(method")}
    ci = ref.conf_int()
    check([("effects", [got["effects"][m]["effect"] for m in names], [ref.params[n] for n in names.values()]),
           ("p", [got["effects"][m]["p"] for m in names], [ref.pvalues[n] for n in names.values()]),
           ("ci", [got["effects"][m]["ci_low"] for m in names], [ci.loc[n, 0] for n in names.values()]),
           ("llf", got["log_likelihood"], ref.llf),
           ("components", [got["variance_components"][k] for k in ("method", "seed", "residual")],
            [*ref.vcomp, ref.scale])], rtol=1e-9)
