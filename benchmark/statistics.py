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

from benchmark.grouped import Grouped

ALPHA = 0.05


def long_table(table: pd.DataFrame, primary: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (dataset, training condition, method, seed, family) from the tidy results table: the
    clean score (the dataset's ``primary`` metric, accuracy where none is given), or the mean accuracy
    over the family's conditions (in condition-key order). Failed runs have no rows (they are counted
    elsewhere). The value column is called ``accuracy`` whatever the clean metric."""
    keys = ["dataset", "train_condition", "method", "seed"]
    test = table["split"] == "test"
    columns = [*keys, "family", "run_id", "condition", "metric", "value"]  # only these rows and columns are taken
    acc = table.loc[test & (table["metric"] == "accuracy"), columns].sort_values(["run_id", "condition"],
                                                                                 kind="stable")
    clean = table.loc[test & (table["condition"] == "clean"), columns]
    wanted = clean["dataset"].astype(str).map(primary or {}).fillna("accuracy")
    clean = clean[clean["metric"].astype(str) == wanted]
    parts = [clean[keys].assign(family="clean", accuracy=clean["value"].to_numpy())]
    others = acc[acc["family"] != "clean"]
    if len(others):
        groups = others.groupby([*keys, "family"], observed=True, sort=True)
        sizes = groups.size()  # np.mean over each group's conditions, in row order, all groups at once
        means = pd.Series(Grouped(groups.ngroup().to_numpy(), len(sizes)).mean(others["value"].to_numpy(float)),
                          index=sizes.index, name="value")
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


def mean_intervals(values: np.ndarray, codes: np.ndarray, n_groups: int,
                   confidence: float = 1 - ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``mean_interval`` of every group at once: the elements with code g (in their order) are group g.
    Returns the arrays of means, lows and highs, each value bit for bit ``mean_interval``'s."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    mean, lo, hi = (np.full(n_groups, math.nan) for _ in range(3))
    for groups, m in Grouped(np.asarray(codes)[finite], n_groups).matrices(values[finite]):
        mu = m.mean(axis=1)
        mean[groups] = mu
        n = m.shape[1]
        if n < 2:
            continue
        scale = np.std(m, axis=1, ddof=1) / np.sqrt(n)
        q_lo, q_hi = _t_quantiles(confidence, n - 1)
        spread = m.std(axis=1) != 0
        lo[groups] = np.where(spread, q_lo * scale + mu, mu)
        hi[groups] = np.where(spread, q_hi * scale + mu, mu)
    return mean, lo, hi


def holm(pvalues: list[float]) -> np.ndarray:
    """Holm-adjusted p-values, by statsmodels. Its Holm branch calls ``gc.collect()`` on every call, which
    takes ~0.2 s in a process holding torch; freezing the objects alive so far makes that collection
    cheap without changing any result."""
    gc.freeze()
    return multipletests(pvalues, alpha=ALPHA, method="holm")[1]


GROUP = ["dataset", "train_condition", "family"]
PAIRWISE_COLUMNS = ["dataset", "train_condition", "family", "method", "reference", "reference_method", "n_pairs",
                    "mean_diff", "p", "d_z", "ci_low", "ci_high", "p_holm", "significant"]


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, method, seed) of ``table``: ``g`` (the group's number in sorted order),
    ``method``, ``seed``, ``value`` (the last row's, as a dict filled row by row keeps it) and ``pos`` (the
    first row's place), sorted by group, method and first place."""
    g = table.groupby(GROUP, sort=True).ngroup().to_numpy(dtype=float)  # NaN: a key is missing (no group)
    kept = np.isfinite(g)
    cells = pd.DataFrame({"g": g[kept].astype(np.int64), "method": table["method"].to_numpy()[kept],
                          "seed": table["seed"].to_numpy()[kept], "value": table["accuracy"].to_numpy(float)[kept],
                          "pos": np.flatnonzero(kept)})
    key = ["g", "method", "seed"]
    first = cells.drop_duplicates(key, keep="first")
    if len(first) < len(cells):
        last = cells.drop_duplicates(key, keep="last")[[*key, "value"]]
        first = first.drop(columns="value").merge(last, on=key, how="left")
    return first.sort_values(["g", "method", "pos"], kind="stable").reset_index(drop=True)


def pairwise_tests(table: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Each method against the best (highest mean) and against ``baseline``, per dataset, training
    condition and family, paired over the seeds both have (method - reference): the mean difference, a
    paired t-test (scipy), its t interval and d_z; p-values Holm-corrected (statsmodels) within each
    (dataset, condition, family, reference). Every pair of every block is computed at once: the pairs
    with the same number of common seeds form one matrix, a row per pair (one ``ttest_rel`` call)."""
    if table.empty:
        return pd.DataFrame([])
    cells = _cells(table)
    keys = table.groupby(GROUP, sort=True).size().index
    methods = cells.drop_duplicates(["g", "method"])  # its index: where each (group, method) starts in cells
    sizes = np.diff(np.r_[methods.index, len(cells)])
    sums = Grouped(np.repeat(np.arange(len(methods)), sizes), len(methods)).reduce(
        cells["value"].to_numpy(), lambda m: m.sum(axis=1))
    means = sums / sizes  # np.sum over the seeds in order, / their number
    refs = []  # (group, reference kind: 0 best, 1 baseline, reference method)
    group_of, names = methods["g"].to_numpy(), methods["method"].to_numpy()
    for part in np.split(np.arange(len(methods)), np.flatnonzero(np.diff(group_of)) + 1):
        # The first of the highest means in sorted order (max over the sorted methods, as Python's max).
        best = max(part, key=lambda i: means[i])
        refs.append((group_of[part[0]], 0, names[best]))
        if baseline in set(names[part]):
            refs.append((group_of[part[0]], 1, baseline))
    refs_frame = pd.DataFrame(refs, columns=["g", "kind", "reference_method"])
    pairs = methods[["g", "method"]].merge(refs_frame, on="g")
    pairs = pairs[pairs["method"] != pairs["reference_method"]]
    pairs = pairs.sort_values(["g", "kind", "method"], kind="stable").reset_index(drop=True)
    pairs["pair"] = np.arange(len(pairs))
    ref_cells = cells[["g", "method", "seed", "value"]].rename(columns={"method": "reference_method",
                                                                       "value": "ref_value"})
    common = pairs.merge(cells, on=["g", "method"]).merge(ref_cells, on=["g", "reference_method", "seed"])
    common = common.sort_values(["pair", "pos"], kind="stable")
    grouped = Grouped(common["pair"].to_numpy(), len(pairs))
    n_pairs = grouped.sizes
    mean_diff, p, d_z, ci_low, ci_high = (np.full(len(pairs), math.nan) for _ in range(5))
    p[:] = 1.0  # fewer than two pairs
    a, b = common["value"].to_numpy(), common["ref_value"].to_numpy()
    for (rows, ma), (_, mb) in zip(grouped.matrices(a), grouped.matrices(b), strict=True):
        d = ma - mb
        mean_diff[rows] = ci_low[rows] = ci_high[rows] = d.mean(axis=1)
        n = d.shape[1]
        if n < 2:
            continue
        # No spread: t is undefined. Identical methods (d == 0) are not different; a constant gap is.
        flat = np.isclose(d, d[:, :1]).all(axis=1)
        p[rows[flat]] = np.where(d[flat, 0] == 0, 1.0, 0.0)
        spread = rows[~flat]
        if len(spread):
            ds = d[~flat]
            p[spread] = np.atleast_1d(stats.ttest_rel(ma[~flat], mb[~flat], axis=1).pvalue)
            mu = ds.mean(axis=1)
            q_lo, q_hi = _t_quantiles(1 - ALPHA, n - 1)
            scale = np.std(ds, axis=1, ddof=1) / np.sqrt(n)
            ci_low[spread], ci_high[spread] = q_lo * scale + mu, q_hi * scale + mu
            d_z[spread] = mu / ds.std(axis=1, ddof=1)
    if not len(pairs):
        return pd.DataFrame([])
    p_holm = np.empty(len(pairs))
    block = pairs["g"].to_numpy() * 2 + pairs["kind"].to_numpy()
    bounds = np.r_[0, np.flatnonzero(np.diff(block)) + 1, len(block)]
    for lo_, hi_ in zip(bounds[:-1], bounds[1:], strict=True):
        p_holm[lo_:hi_] = holm(list(p[lo_:hi_]))
    g = pairs["g"].to_numpy()
    out = pd.DataFrame({
        "dataset": keys.get_level_values(0).to_numpy()[g], "train_condition": keys.get_level_values(1).to_numpy()[g],
        "family": keys.get_level_values(2).to_numpy()[g], "method": pairs["method"].to_numpy(),
        "reference": np.where(pairs["kind"].to_numpy() == 0, "best", "baseline"),
        "reference_method": pairs["reference_method"].to_numpy(), "n_pairs": n_pairs.astype(np.int64),
        "mean_diff": mean_diff, "p": p, "d_z": d_z, "ci_low": ci_low, "ci_high": ci_high, "p_holm": p_holm,
        "significant": p_holm < ALPHA})
    return out[PAIRWISE_COLUMNS]


def not_worse_than_best(pairwise: pd.DataFrame, table: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(dataset, condition, family, method) for the best method (highest mean, pandas' mean) and every
    method whose gap to it is not significant after Holm's correction."""
    means = table.groupby([*GROUP, "method"])["accuracy"].mean()
    keep = {(*key, best[3]) for key, best in means.groupby(level=[0, 1, 2]).idxmax().items()}
    if not pairwise.empty:
        best = pairwise[(pairwise["reference"] == "best") & ~pairwise["significant"].astype(bool)]
        keep |= set(zip(best["dataset"], best["train_condition"], best["family"], best["method"], strict=True))
    return keep


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks: q_alpha * sqrt(k (k + 1) / (6 n)), with q_alpha
    the studentised range quantile over sqrt(2) (Demšar 2006)."""
    q = _studentized_range_quantile(1 - alpha, k) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


@functools.cache
def _studentized_range_quantile(p: float, k: int) -> float:
    """``scipy.stats.studentized_range.ppf(p, k, inf)``, once per (p, k): a root search over numerical
    integrals, the same for every family's Friedman test."""
    return stats.studentized_range.ppf(p, k, np.inf)


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
    value = acc["value"].to_numpy(float)
    values = {key: value[rows] for key, rows in acc.groupby(["dataset", "method"], observed=True).indices.items()}
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
