"""Statistical comparisons of methods, with the tests that the literature on comparing learners
prescribes (Demšar 2006; Benavoli et al. 2016), computed by scipy, statsmodels and scikit-posthocs
(Nemenyi's post-hoc by hand, the way scikit-posthocs computes it, to keep matplotlib out of a rebuild).

- Per dataset, training condition and condition family: every method against the best and against a
  named baseline, paired over seeds (paired t-test), Holm-corrected across methods, with the mean
  difference, its t interval and the paired effect size d_z.
- Across datasets: the Friedman test on per-dataset means, average ranks, Nemenyi's post-hoc and the
  critical difference (Conover with Holm as the option); a linear mixed model of accuracy with method
  as fixed effect and dataset (and seed within dataset) as random effects.
- Spread: the Brown-Forsythe test (Levene's, median-centred) of each method's accuracies over seeds and
  conditions against the baseline's, Holm-corrected.
Incomplete tables are reported: every test says which cells it used and which it left out.
"""

from __future__ import annotations

import functools
import gc
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05


def long_table(table: pd.DataFrame, primary: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, training condition, method, seed, family) from the tidy results table: the
    clean score (the dataset's ``primary`` metric, accuracy where none is given), or the mean accuracy
    over the family's conditions (in condition-key order). Failed runs have no rows (they are counted
    elsewhere). The value column is called ``accuracy`` whatever the clean metric."""
    test = table[table["split"] == "test"]
    acc = test[test["metric"] == "accuracy"].sort_values(["run_id", "condition"], kind="stable")
    keys = ["dataset", "train_condition", "method", "seed"]
    clean = test[test["condition"] == "clean"]
    wanted = clean["dataset"].astype(str).map(primary or {}).fillna("accuracy")
    clean = clean[clean["metric"].astype(str) == wanted]
    parts = [clean[keys].assign(family="clean", accuracy=clean["value"].to_numpy())]
    others = acc[acc["family"] != "clean"]
    if len(others):
        means = others.groupby([*keys, "family"], observed=True, sort=True)["value"].agg(
            lambda v: float(np.mean(v.to_numpy())))
        parts.append(means.rename("accuracy").reset_index())
    out = pd.concat(parts, ignore_index=True)
    for col in ("dataset", "train_condition", "method", "family"):
        out[col] = out[col].astype(str)
    return out.sort_values([*keys, "family"], kind="stable").reset_index(drop=True)[
        ["dataset", "train_condition", "method", "seed", "family", "accuracy"]]


def mean_interval(values: np.ndarray, confidence: float = 1 - ALPHA) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds; the interval is NaN with fewer than two seeds."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2 or values.std() == 0:
        return (mean, mean, mean) if len(values) >= 2 else (mean, math.nan, math.nan)
    lo, hi = t_interval(confidence, len(values) - 1, loc=mean, scale=sem(values))
    return mean, float(lo), float(hi)


def fmt_p(p: float | None) -> str:
    """A p-value as the reports print it: three decimals, scientific below 0.001, a dash when missing."""
    return "—" if p is None or not np.isfinite(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


@functools.cache
def _t_quantiles(confidence: float, df: int) -> tuple[float, float]:
    return float(stats.t.ppf((1 - confidence) / 2, df)), float(stats.t.ppf((1 + confidence) / 2, df))


def t_interval(confidence: float, df: int, loc: float, scale: float) -> tuple[float, float]:
    """``scipy.stats.t.interval(confidence, df, loc, scale)``, bit for bit, with the quantiles computed
    once per (confidence, df): scipy's distribution machinery costs ~1 ms a call, and a leaderboard
    of the full suite makes thousands."""
    lo, hi = _t_quantiles(confidence, df)
    return lo * scale + loc, hi * scale + loc


def sem(values: np.ndarray) -> float:
    """``scipy.stats.sem`` of a 1-d array without NaNs, bit for bit (its argument checks cost more than
    the arithmetic, thousands of times per rebuild)."""
    return float(np.std(values, ddof=1) / np.sqrt(values.shape[0]))


def _paired_block(ref: dict[Any, float], others: dict[str, dict[Any, float]]) -> dict[str, dict[str, float]]:
    """Each method of ``others`` against ``ref``, paired over the seeds both have (method - ref): the mean
    difference, a paired t-test, its t interval and d_z. The t-tests of methods with the same seeds
    run as one ``scipy.stats.ttest_rel`` call over the rows of a matrix."""
    out: dict[str, dict[str, float]] = {}
    diffs: dict[str, np.ndarray] = {}
    batches: dict[tuple, list[str]] = {}
    for m, a in others.items():
        common = tuple(s for s in a if s in ref)
        d = np.array([a[s] - ref[s] for s in common], dtype=float)
        out[m] = {"n_pairs": len(d), "mean_diff": float(d.mean()) if len(d) else math.nan}
        if len(d) < 2 or np.allclose(d, d[0]):
            # No spread: t is undefined. Identical methods (d == 0) are not different; a constant gap is.
            out[m].update(p=1.0 if len(d) < 2 or d[0] == 0 else 0.0, d_z=math.nan, ci_low=out[m]["mean_diff"],
                          ci_high=out[m]["mean_diff"])
        else:
            diffs[m] = d
            batches.setdefault(common, []).append(m)
    for common, methods in batches.items():
        rows = np.array([[others[m][s] for s in common] for m in methods], dtype=float)
        refs = np.array([[ref[s] for s in common]] * len(methods), dtype=float)
        pvalues = np.atleast_1d(stats.ttest_rel(rows, refs, axis=1).pvalue)
        for m, p in zip(methods, pvalues, strict=True):
            d = diffs[m]
            lo, hi = t_interval(1 - ALPHA, len(d) - 1, loc=d.mean(), scale=sem(d))
            out[m].update(p=float(p), d_z=float(d.mean() / d.std(ddof=1)), ci_low=float(lo), ci_high=float(hi))
    return out


def holm(pvalues: list[float]) -> np.ndarray:
    """Holm-adjusted p-values, by statsmodels. Its Holm branch calls ``gc.collect()`` on every call, which
    takes ~0.2 s in a process holding torch; freezing the objects alive so far makes that collection
    cheap without changing any result."""
    gc.freeze()
    return multipletests(pvalues, alpha=ALPHA, method="holm")[1]


def pairwise_tests(table: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Each method against the best (highest mean) and against ``baseline``, per dataset, training
    condition and family; p-values Holm-corrected within each (dataset, condition, family, reference)."""
    rows = []
    for (dataset, cond, fam), part in table.groupby(["dataset", "train_condition", "family"], sort=True):
        by_method: dict[str, dict[Any, float]] = {}
        for m, seed, acc in zip(part["method"], part["seed"], part["accuracy"], strict=True):
            by_method.setdefault(m, {})[seed] = float(acc)
        means = {m: float(np.sum(list(v.values())) / len(v)) for m, v in sorted(by_method.items())}
        best = max(sorted(means), key=means.get)
        for ref_kind, ref in (("best", best), ("baseline", baseline)):
            if ref not in by_method:
                continue
            tests = _paired_block(by_method[ref], {m: v for m, v in sorted(by_method.items()) if m != ref})
            block = [{"dataset": dataset, "train_condition": cond, "family": fam, "method": m,
                      "reference": ref_kind, "reference_method": ref, **res} for m, res in tests.items()]
            if block:
                adjusted = holm([b["p"] for b in block])
                for b, p_adj in zip(block, adjusted, strict=True):
                    b["p_holm"] = float(p_adj)
                    b["significant"] = bool(p_adj < ALPHA)
                rows += block
    return pd.DataFrame(rows)


def not_worse_than_best(pairwise: pd.DataFrame, table: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(dataset, condition, family, method) for the best method and every method whose gap to it is not
    significant after Holm's correction."""
    keep = set()
    for (dataset, cond, fam), part in table.groupby(["dataset", "train_condition", "family"]):
        means = part.groupby("method")["accuracy"].mean()
        keep.add((dataset, cond, fam, means.idxmax()))
    if not pairwise.empty:
        for _, r in pairwise[pairwise["reference"] == "best"].iterrows():
            if not r["significant"]:
                keep.add((r["dataset"], r["train_condition"], r["family"], r["method"]))
    return keep


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks: q_alpha * sqrt(k (k + 1) / (6 n)), with q_alpha
    the studentised range quantile over sqrt(2) (Demšar 2006)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def nemenyi_friedman(values: np.ndarray) -> np.ndarray:
    """Nemenyi's post-hoc p-values after a Friedman test of a (blocks x methods) matrix, as
    ``scikit_posthocs.posthoc_nemenyi_friedman`` computes them (Demšar 2006): written here because
    importing scikit-posthocs imports matplotlib.pyplot, a second of every rebuild; a test checks that
    both give the same matrix."""
    n, k = values.shape
    mean_ranks = stats.rankdata(values, axis=1, method="average").mean(axis=0)
    upper = np.triu_indices(k, 1)
    q = np.abs(mean_ranks[upper[0]] - mean_ranks[upper[1]]) / np.sqrt(k * (k + 1.0) / (6.0 * n))
    p = np.zeros((k, k))
    p[upper] = stats.studentized_range.sf(q * np.sqrt(2.0), k, np.inf)
    lower = np.tril_indices(k, -1)
    p[lower] = p.T[lower]
    np.fill_diagonal(p, 1)
    return p


def friedman(table: pd.DataFrame, family: str = "clean", posthoc: str = "nemenyi") -> dict[str, Any]:
    """Friedman test over blocks (dataset, training condition) of per-block mean accuracies. Blocks
    that lack a method are left out and named."""
    part = table[table["family"] == family]
    means = part.groupby(["dataset", "train_condition", "method"])["accuracy"].mean().unstack("method")
    complete = means.dropna()
    result: dict[str, Any] = {"family": family, "blocks_used": [" / ".join(i) for i in complete.index],
                              "blocks_left_out": [" / ".join(i) for i in means.index.difference(complete.index)],
                              "methods": list(complete.columns)}
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        result["note"] = f"needs at least 3 methods and 2 complete blocks (has {k} methods, {n} blocks)"
        return result
    ranks = complete.rank(axis=1, ascending=False).mean()
    if np.allclose(complete.to_numpy(), complete.to_numpy()[:, :1]):
        # Every method ties in every block: no evidence of a difference (scipy's statistic is 0/0 here).
        ones = pd.DataFrame(1.0, index=complete.columns, columns=complete.columns)
        result.update(statistic=0.0, p=1.0, average_ranks=ranks.to_dict(),
                      critical_difference=critical_difference(k, n), posthoc=posthoc, posthoc_p=ones,
                      note_ties="all methods tie in every block")
        return result
    stat = stats.friedmanchisquare(*[complete[c].to_numpy() for c in complete.columns])
    if posthoc == "nemenyi":
        p = pd.DataFrame(nemenyi_friedman(complete.to_numpy()))
    else:
        import scikit_posthocs as sp

        p = sp.posthoc_conover_friedman(complete.to_numpy(), p_adjust="holm")
    p.index = p.columns = complete.columns
    result.update(statistic=float(stat.statistic), p=float(stat.pvalue), average_ranks=ranks.to_dict(),
                  critical_difference=critical_difference(k, n), posthoc=posthoc, posthoc_p=p)
    return result


def mixed_model(table: pd.DataFrame, baseline: str, family: str = "clean") -> dict[str, Any]:
    """accuracy ~ method (treatment coding against ``baseline``) + (1 | dataset) + (1 | seed in
    dataset), by statsmodels' MixedLM. Each method's coefficient is its effect against the baseline."""
    import statsmodels.formula.api as smf

    part = table[table["family"] == family].copy()
    if baseline not in set(part["method"]) or part["dataset"].nunique() < 2:
        return {"family": family, "note": "needs the baseline and at least 2 datasets"}
    part["seed"] = part["seed"].astype(str)
    formula = f"accuracy ~ C(method, Treatment('{baseline}'))"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm(formula, part, groups=part["dataset"], re_formula="1",
                              vc_formula={"seed": "0 + C(seed)"}).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {"family": family, "note": f"the mixed model could not be fitted: {exc}"}
    ci = fit.conf_int(alpha=ALPHA)
    effects = {}
    for name in fit.params.index:
        if name.startswith("C(method"):
            method = name.split("[T.")[1].rstrip("]")
            effects[method] = {"effect": float(fit.params[name]), "ci_low": float(ci.loc[name, 0]),
                               "ci_high": float(ci.loc[name, 1]), "p": float(fit.pvalues[name])}
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    return {"family": family, "baseline": baseline, "effects": effects, "n": int(len(part)),
            "converged": bool(fit.converged), "warnings": notes}


def spread_tests(table: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Per dataset (a variant is a dataset of its own): is a method's spread of accuracy over seeds and
    conditions different from the baseline's? Brown-Forsythe (median-centred Levene), Holm-corrected
    across methods."""
    acc = table[(table["split"] == "test") & (table["metric"] == "accuracy")]
    values = {key: part["value"].to_numpy(float)
              for key, part in acc.groupby(["dataset", "method"], observed=True, sort=True)}
    rows = []
    for dataset in sorted({d for d, _ in values}):
        if (dataset, baseline) not in values:
            continue
        base = values[(dataset, baseline)]
        block = []
        for (d, m), v in sorted(values.items()):
            if d != dataset or m == baseline:
                continue
            test = stats.levene(v, base, center="median")
            block.append({"dataset": dataset, "method": m, "baseline": baseline, "sd": float(v.std(ddof=1)),
                          "baseline_sd": float(base.std(ddof=1)), "n": len(v), "p": float(test.pvalue)})
        if block:
            adjusted = holm([b["p"] for b in block])
            for b, p in zip(block, adjusted, strict=True):
                b["p_holm"] = float(p)
            rows += block
    return pd.DataFrame(rows)
