"""Statistical comparisons of methods, with the tests that the literature on comparing learners
prescribes (Demšar 2006; Benavoli, Corani and Mangili 2016), computed by scipy, statsmodels and
scikit-posthocs (Nemenyi's post-hoc by hand, the way scikit-posthocs computes it, to keep matplotlib out of
a rebuild). Training conditions are never pooled: every test across datasets is per training condition.

- Per dataset, training condition and condition family: every method against the best and against a
  named baseline, paired over seeds (paired t-test), Holm-corrected across methods, with the mean
  difference, its t interval and the paired effect size d_z; and non-inferiority to the best within a
  margin (one-sided paired t-test, Holm-corrected), the best being chosen from the same data.
- Across datasets, per training condition (datasets are the blocks, each block the mean over seeds):
  Friedman's test with Iman and Davenport's F, average ranks, Nemenyi's post-hoc and the critical
  difference, and the Wilcoxon signed-rank test of every pair with Holm's correction beside them; a
  linear mixed model of accuracy with method as fixed effect and dataset, seed-in-dataset and
  method-by-dataset variance components.
- Spread over seeds (the unit a seed's run is): each cell's (dataset, training condition, test condition)
  standard deviation over seeds, compared with the baseline's, paired over datasets (Wilcoxon, Holm).
- Bounded quantities (accuracies, AUROC, ECE) get a logit-scale t-interval that stays inside [0, 1].
Every ranking goes through ``rank_scores`` (scores rounded to ``RANK_DECIMALS`` first, so that equal
scores that differ by float rounding tie). Incomplete tables are reported: every test says which cells it
used and which it left out.
"""

from __future__ import annotations

import functools
import gc
import importlib
import itertools
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from benchmark.grouped import Grouped


class _OnFirstUse:
    """A module imported on first attribute access: a rebuild's leaderboard process needs only the t
    quantiles (``scipy.special``), and ``scipy.stats`` and statsmodels cost as much to import as pandas;
    the statistics process (benchmark.report.stats_side) imports them while that process reads records."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


stats = _OnFirstUse("scipy.stats")
_multitest = _OnFirstUse("statsmodels.stats.multitest")


def multipletests(*args: Any, **kwargs: Any) -> Any:
    """statsmodels' ``multipletests``, imported on first use."""
    return _multitest.multipletests(*args, **kwargs)


ALPHA = 0.05
#: Scores are rounded to this many decimals before any ranking: a tie in the data stays a tie whatever
#: the float arithmetic that produced each score (2/7 summed in two orders differs in the 17th digit).
RANK_DECIMALS = 9
#: The non-inferiority margin (a fraction: 0.01 = 1 point of accuracy) when the suite names none.
MARGIN = 0.01


def rank_scores(scores: pd.DataFrame, axis: int = 1) -> pd.DataFrame:
    """Ranks along ``axis`` (1 = best = highest score), ties sharing their mean rank, after rounding the
    scores to ``RANK_DECIMALS``; NaN stays unranked. The one ranking every table and test uses."""
    return scores.round(RANK_DECIMALS).rank(axis=axis, ascending=False, method="average")


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
    """``scipy.stats.t.ppf`` at both tails, bit for bit: its ``_ppf`` is ``special.stdtrit``."""
    return float(special.stdtrit(df, (1 - confidence) / 2)), float(special.stdtrit(df, (1 + confidence) / 2))


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


def logit_intervals(values: np.ndarray, codes: np.ndarray, n_groups: int,
                    confidence: float = 1 - ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and logit-scale t-interval of every group of a quantity bounded by [0, 1] (elements with code
    g are group g): logit(mean) +- t(n-1) * se / (mean (1 - mean)) (the delta method), mapped back with
    the logistic function. Chosen over a bootstrap because with 3-5 seeds a percentile bootstrap has
    few distinct resamples and is narrower than the t-interval (its coverage falls short), while this
    keeps the t quantile's small-sample width and cannot leave (0, 1); a group without spread gets the
    point, a group with one value none."""
    mean, lo, hi = (np.full(n_groups, math.nan) for _ in range(3))
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    for groups, m in Grouped(np.asarray(codes)[finite], n_groups).matrices(values[finite]):
        mu = m.mean(axis=1)
        mean[groups] = mu
        n = m.shape[1]
        if n < 2:
            continue
        se = np.std(m, axis=1, ddof=1) / np.sqrt(n)
        q_lo, q_hi = _t_quantiles(confidence, n - 1)
        inside = (mu > 0) & (mu < 1)
        centre = np.log(np.where(inside, mu, 0.5) / (1 - np.where(inside, mu, 0.5)))
        scale = se / np.where(inside, mu * (1 - mu), 1.0)
        flat = se == 0
        lo[groups] = np.where(flat, mu, np.where(inside, 1 / (1 + np.exp(-(centre + q_lo * scale))), math.nan))
        hi[groups] = np.where(flat, mu, np.where(inside, 1 / (1 + np.exp(-(centre + q_hi * scale))), math.nan))
    return mean, lo, hi


def logit_interval(values: np.ndarray, confidence: float = 1 - ALPHA) -> tuple[float, float, float]:
    """``logit_intervals`` of one group."""
    values = np.asarray(values, dtype=float)
    mean, lo, hi = logit_intervals(values, np.zeros(len(values), dtype=np.int64), 1, confidence)
    return float(mean[0]), float(lo[0]), float(hi[0])


def holm(pvalues: list[float]) -> np.ndarray:
    """Holm-adjusted p-values, by statsmodels. Its Holm branch calls ``gc.collect()`` on every call, which
    takes ~0.2 s in a process holding torch; freezing the objects alive so far makes that collection
    cheap without changing any result."""
    gc.freeze()
    return multipletests(pvalues, alpha=ALPHA, method="holm")[1]


def holm_by_block(pvalues: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values within each block (elements with the same ``block`` code), every block at
    once: within a block sorted ascending, min(1, running max of (m - i) p_(i)). By hand because one
    statsmodels call per block costs more than the whole table (a test checks it against statsmodels)."""
    p = np.asarray(pvalues, dtype=float)
    block = np.asarray(block)
    order = np.lexsort((p, block))
    b, ps = block[order], p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(b)) + 1]
    sizes = np.diff(np.r_[starts, len(b)])
    start_of = np.repeat(starts, sizes)
    m = np.repeat(sizes, sizes)
    scaled = np.minimum(1.0, (m - (np.arange(len(b)) - start_of)) * ps)
    # A running maximum that restarts at every block: offset each block above the previous ones.
    offset = np.repeat(np.arange(len(starts)) * 2.0, sizes)
    running = np.maximum.accumulate(scaled + offset) - offset
    out = np.empty_like(p)
    out[order] = running
    return out


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


NONINFERIORITY_COLUMNS = ["dataset", "train_condition", "family", "method", "best", "n_pairs", "delta",
                          "ci_low", "ci_high", "p", "p_holm", "noninferior"]


def noninferiority(pairwise: pd.DataFrame, margin: float = MARGIN) -> pd.DataFrame:
    """Per dataset, training condition and family: each method's paired difference to the best (delta =
    method - best over the common seeds, with the paired t-test's 95% interval) and the one-sided paired
    t-test of H0 delta <= -margin against H1 delta > -margin, Holm-corrected across the block's methods;
    ``noninferior`` where it rejects at ALPHA. The best (highest mean) is chosen from these same data, so
    every delta is biased downwards (the winner's curse) and the test errs towards not granting the mark.
    The best itself has delta 0 and is marked by definition (``best`` True, no test). A difference with no
    spread is non-inferior when it lies above -margin (p 0), otherwise not (p 1); one pair tests nothing."""
    if pairwise.empty:
        return pd.DataFrame(columns=NONINFERIORITY_COLUMNS)
    rows = pairwise[pairwise["reference"] == "best"]
    n = rows["n_pairs"].to_numpy(np.int64)
    delta = rows["mean_diff"].to_numpy(float)
    lo, hi = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    p = np.ones(len(rows))
    width = np.array([np.subtract(*_t_quantiles(1 - ALPHA, k - 1)[::-1]) if k >= 2 else math.nan for k in n])
    se = (hi - lo) / width  # the paired t-interval's standard error, back from its width
    tested = n >= 2
    flat = tested & (se == 0)
    p[flat] = np.where(delta[flat] > -margin, 0.0, 1.0)
    spread = tested & (se > 0)
    p[spread] = stats.t.sf((delta[spread] + margin) / se[spread], n[spread] - 1)
    out = pd.DataFrame({"dataset": rows["dataset"].to_numpy(), "train_condition": rows["train_condition"].to_numpy(),
                        "family": rows["family"].to_numpy(), "method": rows["method"].to_numpy(), "best": False,
                        "n_pairs": n, "delta": delta, "ci_low": lo, "ci_high": hi, "p": p})
    out["p_holm"] = holm_by_block(p, out.groupby(GROUP, sort=False).ngroup().to_numpy())
    out["noninferior"] = out["p_holm"] < ALPHA
    best = rows.drop_duplicates(GROUP)[[*GROUP, "reference_method"]].rename(columns={"reference_method": "method"})
    best = best.assign(best=True, n_pairs=0, delta=0.0, ci_low=0.0, ci_high=0.0, p=math.nan, p_holm=math.nan,
                       noninferior=True)
    out = pd.concat([out, best[NONINFERIORITY_COLUMNS]], ignore_index=True)
    return out.sort_values([*GROUP, "method"], kind="stable").reset_index(drop=True)[NONINFERIORITY_COLUMNS]


def noninferior_marks(table: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(dataset, condition, family, method) of the best and of each method shown non-inferior to it: the
    ``marks`` the pages put a ✓ on."""
    kept = table[table["noninferior"].astype(bool)]
    return set(zip(kept["dataset"], kept["train_condition"], kept["family"], kept["method"], strict=True))


def noninferiority_text(margin: float) -> str:
    """What the ✓ means, printed under every table that carries it."""
    return (f"✓: the best (highest mean; chosen from these same data, so its lead is optimistic) or shown "
            f"non-inferior to it within {margin * 100:g} point(s): one-sided paired t-test over seeds of "
            f"H0 Δ ≤ -{margin * 100:g} against Δ > -{margin * 100:g} (Δ = method - best), Holm-corrected across the "
            f"table's methods, α = {ALPHA}. No ✓ means not shown within the margin, not shown worse.")


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


_SF_CACHE: dict[tuple[float, int], float] = {}


def _studentized_range_sf(q: np.ndarray, k: int) -> np.ndarray:
    """``scipy.stats.studentized_range.sf(q, k, inf)``, each value computed once per process: a numerical
    integral each, and with n datasets the differences of mean ranks take few values (multiples of
    1 / (2n)), the same in every family's and condition's table. The new values go to scipy in one call."""
    q = np.asarray(q, dtype=float)
    new = sorted({float(x) for x in q} - {key for key, kk in _SF_CACHE if kk == k})
    if new:
        _SF_CACHE.update(zip(((x, k) for x in new), map(float, stats.studentized_range.sf(new, k, np.inf)),
                             strict=True))
    return np.array([_SF_CACHE[(float(x), k)] for x in q])


def nemenyi_friedman(values: np.ndarray) -> np.ndarray:
    """Nemenyi's post-hoc p-values after a Friedman test of a (blocks x methods) matrix, as
    ``scikit_posthocs.posthoc_nemenyi_friedman`` computes them (Demšar 2006), with the ranks of
    ``rank_scores``: written here because importing scikit-posthocs imports matplotlib.pyplot, a second
    of every rebuild; a test checks that both give the same matrix."""
    n, k = values.shape
    mean_ranks = rank_scores(pd.DataFrame(values), axis=1).to_numpy().mean(axis=0)
    upper = np.triu_indices(k, 1)
    q = np.abs(mean_ranks[upper[0]] - mean_ranks[upper[1]]) / np.sqrt(k * (k + 1.0) / (6.0 * n))
    p = np.zeros((k, k))
    p[upper] = _studentized_range_sf(q * np.sqrt(2.0), k)
    lower = np.tril_indices(k, -1)
    p[lower] = p.T[lower]
    np.fill_diagonal(p, 1)
    return p


def iman_davenport(chi2: float, n: int, k: int) -> tuple[float, float, int, int]:
    """Iman and Davenport's F from Friedman's chi2 over n blocks and k methods (Demšar 2006, eq. 3):
    F = (n - 1) chi2 / (n (k - 1) - chi2) on (k - 1, (k - 1)(n - 1)) degrees of freedom; (F, p, df1,
    df2). Perfect agreement of the blocks (chi2 = n (k - 1)) gives F = inf, p = 0. No library in the
    pinned environment computes it."""
    df1, df2 = k - 1, (k - 1) * (n - 1)
    denominator = n * (k - 1) - chi2
    if denominator <= 0:
        return math.inf, 0.0, df1, df2
    f = (n - 1) * chi2 / denominator
    return float(f), float(stats.f.sf(f, df1, df2)), df1, df2


WILCOXON_COLUMNS = ["method", "other", "n", "mean_diff", "statistic", "p", "p_holm", "significant"]

#: Up to this many pairs the signed-rank test's null distribution is enumerated (2**n sign flips).
EXACT_SIGNED_RANK_MAX = 13


def signed_rank(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided Wilcoxon signed-rank test of each row of ``a`` against the same row of ``b`` (zero
    differences dropped, tied |differences| sharing their mean rank): the statistics and p-values that
    ``scipy.stats.wilcoxon(a, b, axis=1)`` gives row by row. Written here because scipy, given one row
    with a tie or a zero, runs a permutation test (a Python call per sign flip) on every row: 2 s for
    the 45 pairs of one Friedman table. Up to ``EXACT_SIGNED_RANK_MAX`` pairs every sign flip is
    enumerated at once (the exact distribution, ties included, as scipy's permutation test computes it);
    beyond, scipy decides. A test checks both against scipy."""
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    d = a - b
    n = d.shape[1]
    if n > EXACT_SIGNED_RANK_MAX:
        res = stats.wilcoxon(a, b, axis=1)
        return np.atleast_1d(res.statistic).astype(float), np.atleast_1d(res.pvalue).astype(float)
    nonzero = d != 0
    size = np.abs(d)
    # Each nonzero |difference|'s mean rank among the row's nonzero ones: (#smaller) + (#equal + 1) / 2.
    smaller = ((size[:, None, :] < size[:, :, None]) & nonzero[:, None, :]).sum(axis=2)
    equal = ((size[:, None, :] == size[:, :, None]) & nonzero[:, None, :]).sum(axis=2)
    ranks = np.where(nonzero, smaller + (equal + 1) / 2, 0.0)
    r_plus, r_minus = (ranks * (d > 0)).sum(axis=1), (ranks * (d < 0)).sum(axis=1)
    flips = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1  # every sign assignment, one per row
    null = ranks @ flips.T  # r_plus under each assignment
    gamma = np.abs(1e-14 * r_plus)[:, None]  # scipy's permutation test's tolerance for equal statistics
    less = (null <= r_plus[:, None] + gamma).mean(axis=1)
    greater = (null >= r_plus[:, None] - gamma).mean(axis=1)
    p = np.clip(2 * np.minimum(less, greater), 0, 1)
    p[~nonzero.any(axis=1)] = np.nan  # no difference at all: scipy's answer too
    return np.minimum(r_plus, r_minus), p


def wilcoxon_holm(means: pd.DataFrame) -> pd.DataFrame:
    """Every pair of methods (columns of ``means``, a row per dataset) by the Wilcoxon signed-rank test
    over the datasets (``signed_rank``: exact, zero differences dropped), Holm-corrected across all
    pairs: the pairwise alternative to Nemenyi that Benavoli et al. (2016) recommend, since its verdict
    on a pair does not depend on the other methods compared. Scores are rounded to ``RANK_DECIMALS``
    first (equal scores make a zero difference); a pair equal on every dataset gets p = 1."""
    cols = list(means.columns)
    values = means.round(RANK_DECIMALS).to_numpy(float)
    pairs = list(itertools.combinations(range(len(cols)), 2))
    if not pairs:
        return pd.DataFrame(columns=WILCOXON_COLUMNS)
    a = values[:, [i for i, _ in pairs]].T
    b = values[:, [j for _, j in pairs]].T
    statistic, p = signed_rank(a, b)
    p = np.where(np.isnan(p), 1.0, p)
    p_holm = holm(list(p))
    return pd.DataFrame({"method": [cols[i] for i, _ in pairs], "other": [cols[j] for _, j in pairs],
                         "n": values.shape[0], "mean_diff": (a - b).mean(axis=1), "statistic": statistic, "p": p,
                         "p_holm": p_holm, "significant": p_holm < ALPHA})[WILCOXON_COLUMNS]


def training_conditions(table: pd.DataFrame) -> list[str]:
    """The table's training conditions, ``standard`` first, then in sorted order."""
    return sorted({str(c) for c in table["train_condition"].unique()}, key=lambda c: (c != "standard", c))


def friedman(table: pd.DataFrame, family: str = "clean", posthoc: str = "nemenyi",
             train_condition: str | None = None) -> dict[str, Any]:
    """Friedman's test over the datasets as blocks (each block the method's mean over seeds) within one
    training condition (``train_condition``, or the table's only one: conditions are never pooled as
    blocks, which would count each dataset once per condition). With it: Iman and Davenport's F (which
    Demšar 2006 recommends over chi2), average ranks, the post-hoc p-values (Nemenyi, or Conover with
    Holm), Nemenyi's critical difference and the Wilcoxon-Holm pairs. Datasets that lack a method are
    left out and named."""
    conditions = sorted({str(c) for c in table["train_condition"].unique()})
    if train_condition is None:
        if len(conditions) > 1:
            raise ValueError(f"Friedman's test is per training condition; the table has {conditions}")
        train_condition = conditions[0] if conditions else ""
    part = table[(table["family"] == family) & (table["train_condition"] == train_condition)]
    means = part.groupby(["dataset", "method"])["accuracy"].mean().unstack("method")
    return friedman_of_means(means, family, train_condition, posthoc)


def friedman_tests(table: pd.DataFrame, families: tuple[str, ...], posthoc: str = "nemenyi"
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """``friedman`` of every (training condition, family) of ``table``, the per-dataset means taken in
    one pass (the same numbers: pandas' mean of each group)."""
    part = table[table["family"].isin(families)]
    means = part.groupby(["train_condition", "family", "dataset", "method"])["accuracy"].mean().unstack("method")
    out = {}
    for cond in training_conditions(table):
        for fam in families:
            key = (cond, fam)
            block = means.xs(key, level=[0, 1]) if key in means.index.droplevel(2) else means.iloc[:0].droplevel([0, 1])
            out[key] = friedman_of_means(block.dropna(axis=1, how="all"), fam, cond, posthoc)
    return out


def friedman_of_means(means: pd.DataFrame, family: str, train_condition: str, posthoc: str = "nemenyi"
                      ) -> dict[str, Any]:
    """``friedman`` of a (datasets x methods) table of per-dataset means."""
    complete = means.dropna()
    result: dict[str, Any] = {"family": family, "train_condition": train_condition,
                              "blocks_used": list(complete.index),
                              "blocks_left_out": list(means.index.difference(complete.index)),
                              "methods": list(complete.columns)}
    k, n = complete.shape[1], complete.shape[0]
    if k < 3 or n < 2:
        result["note"] = f"needs at least 3 methods and 2 complete datasets (has {k} methods, {n} datasets)"
        return result
    rounded = complete.round(RANK_DECIMALS)
    ranks = rank_scores(complete, axis=1).mean()
    result.update(average_ranks=ranks.to_dict(), critical_difference=critical_difference(k, n), posthoc=posthoc,
                  wilcoxon=wilcoxon_holm(complete))
    if (rounded.to_numpy() == rounded.to_numpy()[:, :1]).all():
        # Every method ties in every block: no evidence of a difference (scipy's statistic is 0/0 here).
        ones = pd.DataFrame(1.0, index=complete.columns, columns=complete.columns)
        result.update(statistic=0.0, p=1.0, iman_davenport=(0.0, 1.0, k - 1, (k - 1) * (n - 1)), posthoc_p=ones,
                      note_ties="all methods tie in every dataset")
        return result
    stat = stats.friedmanchisquare(*[rounded[c].to_numpy() for c in rounded.columns])
    if posthoc == "nemenyi":
        p = pd.DataFrame(nemenyi_friedman(complete.to_numpy()))
    else:
        import scikit_posthocs as sp

        p = sp.posthoc_conover_friedman(rounded.to_numpy(), p_adjust="holm")
    p.index = p.columns = complete.columns
    result.update(statistic=float(stat.statistic), p=float(stat.pvalue),
                  iman_davenport=iman_davenport(float(stat.statistic), n, k), posthoc_p=p)
    return result


def mixed_model(table: pd.DataFrame, baseline: str, family: str = "clean",
                train_condition: str | None = None) -> dict[str, Any]:
    """accuracy ~ method (treatment coding against ``baseline``) with variance components for dataset,
    seed within dataset and method within dataset (the method-by-dataset interaction: without it, the
    methods' different gaps on different datasets count as seed noise and the intervals are too narrow),
    by statsmodels' MixedLM (REML), within one training condition. Each method's coefficient is its
    effect against the baseline. A fit that did not converge (statsmodels says so, or warns of a failed
    optimisation or a Hessian that is not positive definite) is reported with its estimates only: no
    interval, no p-value. The residual variance is one for all methods (MixedLM has no other choice)."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    part = table[table["family"] == family]
    if train_condition is not None:
        part = part[part["train_condition"] == train_condition]
    base = {"family": family, "train_condition": train_condition}
    if part["train_condition"].nunique() > 1:
        raise ValueError("the mixed model is fitted per training condition")
    if baseline not in set(part["method"]) or part["dataset"].nunique() < 2:
        return {**base, "note": "needs the baseline and at least 2 datasets"}
    part = part.assign(seed=part["seed"].astype(str)).sort_values(["dataset", "method", "seed"], kind="stable")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = _mixed_lm(part, baseline).fit(reml=True, method=["powell", "lbfgs"])
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {**base, "note": f"the mixed model could not be fitted: {exc}"}
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    # statsmodels retries with the next optimiser after a failure (warning each time): the last one's
    # verdict counts, and a Hessian that is not positive definite leaves no standard error to trust.
    hessian = any(issubclass(w.category, ConvergenceWarning) and "Hessian" in str(w.message) for w in caught)
    converged = bool(fit.converged) and not hessian
    effects = {}
    ci = fit.conf_int(alpha=ALPHA) if converged else None
    for name in fit.params.index:
        if name.startswith("method="):
            method = name[len("method="):]
            effect = {"effect": float(fit.params[name])}
            if ci is not None:
                effect.update(ci_low=float(ci.loc[name, 0]), ci_high=float(ci.loc[name, 1]),
                              p=float(fit.pvalues[name]))
            effects[method] = effect
    components = {"dataset": float(fit.cov_re.iloc[0, 0]), "residual": float(fit.scale),
                  **{name: float(v) for name, v in zip(fit.model.exog_vc.names, fit.vcomp, strict=True)}}
    return {**base, "baseline": baseline, "effects": effects, "n": int(len(part)), "converged": converged,
            "log_likelihood": float(fit.llf), "variance_components": components, "warnings": notes}


def _mixed_lm(part: pd.DataFrame, baseline: str):  # noqa: ANN202 - statsmodels' MixedLM
    """The model ``smf.mixedlm("accuracy ~ C(method, Treatment(baseline))", groups=dataset, re_formula="1",
    vc_formula={"seed": "0 + C(seed)", "method": "0 + C(method)"})`` builds, with its design matrices made
    by numpy: the formula interface evaluates two formulas per dataset (a third of the fit's time). A test
    checks that both give the same fit. Fixed effects are named ``method=<name>``."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    methods = part["method"].to_numpy(dtype=str)
    others = [m for m in sorted(set(methods)) if m != baseline]
    exog = pd.DataFrame(np.column_stack([np.ones(len(part)), *((methods == m).astype(float) for m in others)]),
                        columns=["Intercept", *(f"method={m}" for m in others)])
    groups = part["dataset"].to_numpy(dtype=str)
    names, colnames, mats = ["method", "seed"], [[], []], [[], []]
    for dataset in sorted(set(groups)):
        rows = groups == dataset
        for k, column in enumerate((methods[rows], part["seed"].to_numpy(dtype=str)[rows])):
            levels = sorted(set(column))
            colnames[k].append(levels)
            mats[k].append(np.column_stack([(column == level).astype(float) for level in levels]))
    return MixedLM(part["accuracy"].to_numpy(float), exog, groups=groups, exog_re=np.ones((len(part), 1)),
                   exog_vc=VCSpec(names, colnames, mats))


def mixed_models(table: pd.DataFrame, baseline: str, family: str = "clean") -> dict[str, dict[str, Any]]:
    """``mixed_model`` of each training condition."""
    return {cond: mixed_model(table, baseline, family, cond) for cond in training_conditions(table)}


SPREAD_COLUMNS = ["train_condition", "method", "baseline", "n_datasets", "cells", "sd", "baseline_sd", "ratio",
                  "p", "p_holm"]


def spread_tests(table: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Is a method's accuracy more or less spread over seeds than the baseline's? Seeds are the unit: in
    each cell (dataset, training condition, test condition) the standard deviation over seeds (centred
    on the cell's own mean, so that differences between conditions never count as spread); a method's
    spread on a dataset is the mean of its cells' SDs there. All the cells of a dataset come from the
    same runs, so the dataset, not the cell, is the unit of the test: per training condition, the
    Wilcoxon signed-rank test over datasets of method against baseline (paired), Holm-corrected across
    methods. ``sd`` and ``baseline_sd`` are medians over the datasets; ``ratio`` the median ratio."""
    acc = table[(table["split"] == "test") & (table["metric"] == "accuracy")]
    if baseline is None or acc.empty:
        return pd.DataFrame(columns=SPREAD_COLUMNS)
    cells = acc.groupby(["train_condition", "dataset", "condition", "method"], observed=True)["value"].std(ddof=1)
    cells = cells.dropna()
    per_dataset = cells.groupby(level=["train_condition", "dataset", "method"], observed=True).agg(["mean", "size"])
    sd = per_dataset["mean"].unstack("method")
    counts = per_dataset["size"].unstack("method")
    rows = []
    for cond in training_conditions(acc):
        if cond not in sd.index.get_level_values(0) or baseline not in sd.columns:
            continue
        part, n_cells = sd.loc[cond], counts.loc[cond]
        block = []
        for method in sorted(c for c in part.columns if c != baseline):
            pair = part[[method, baseline]].dropna()
            if len(pair) < 2:
                continue
            x, y = pair[method].to_numpy(), pair[baseline].to_numpy()
            p = float(np.nan_to_num(signed_rank(x, y)[1], nan=1.0)[0])
            block.append({"train_condition": cond, "method": method, "baseline": baseline, "n_datasets": len(pair),
                          "cells": int(n_cells.loc[pair.index, method].sum()), "sd": float(np.median(x)),
                          "baseline_sd": float(np.median(y)),
                          "ratio": float(np.median(x[y > 0] / y[y > 0])) if (y > 0).any() else math.nan,
                          "p": p})
        if block:
            for b, adjusted in zip(block, holm([b["p"] for b in block]), strict=True):
                b["p_holm"] = float(adjusted)
            rows += block
    return pd.DataFrame(rows, columns=SPREAD_COLUMNS)
