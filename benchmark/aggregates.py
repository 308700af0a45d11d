"""Across-dataset summaries of one training condition, as the reliable-evaluation literature defines them:

- the interquartile mean (IQM) of every run's score, with a stratified bootstrap interval, performance
  profiles (the share of runs scoring above a threshold) and the probability of improvement over a
  baseline with its stratified bootstrap interval, as rliable defines them (Agarwal et al., NeurIPS 2021:
  ``metrics.aggregate_iqm``, ``library.create_performance_profile``, ``metrics.probability_of_improvement``,
  ``library.get_interval_estimates``);
- the Bayesian signed-rank test over datasets against the baseline with a region of practical
  equivalence (ROPE), giving P(better), P(equivalent), P(worse), as baycomp's ``SignedRankTest.probs``
  computes them (Benavoli et al., ICML 2014; JMLR 2017).

Why by hand: rliable's bootstrap (built on ``arch``) calls the statistic once per resample in Python
(about 0.3 ms a call: 50,000 resamples x 10 methods is minutes) and ``arch`` 7.x, the last that rliable
accepts, does not import under pandas 3 without a shim; baycomp's signed-rank test loops over its
posterior samples in Python (about 0.5 s per comparison). Here each is one vectorised numpy computation
on the same definitions, seeded, and tests/test_aggregates.py recomputes them with rliable and baycomp
on the committed records.

Why not baycomp's hierarchical test (Corani et al., 2017), which would also use the seed-to-seed spread:
it samples its model with Stan. pystan 3.10 and httpstan 4.13 do install from PyPI on Python 3.11 (15
packages more than the lock) and, with a C++ compiler, the model builds, but building took 136 s here and
sampling 2 chains of 2,000 draws about 6 s per comparison (27 comparisons per rebuild), where the whole
page is rebuilt in seconds; and baycomp 1.0.3's HierarchicalTest fails on these records: with an odd
number of seeds (5) and a dataset where the difference of the two methods does not vary over seeds (e.g.
both at balanced accuracy 0.5), its ``prepare_stan_data`` raises ``ValueError: could not broadcast input
array from shape (2,) into shape (3,)``. No other well-kept sampler is in the pinned environment.

Resampling: every interval is a 95% percentile bootstrap with ``RESAMPLES`` resamples; each (training
condition, method) draws its resamples from its own ``numpy.random.Generator`` seeded with ``SEED`` and
the CRC-32 of those names, so a method's interval does not depend on which other methods are present,
on the order of the rows, or on ``PYTHONHASHSEED``; the signed-rank test's posterior draws come from a
Generator seeded with ``SEED`` and the number of datasets, shared by every comparison.
"""

from __future__ import annotations

import contextlib
import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEED = 20211206  # rliable's paper date (NeurIPS 2021): fixed, documented, printed under every table
# Resamples per bootstrap interval (rliable's default is 50,000): 2,000 keeps the section of the three
# training conditions near 0.1 s of CPU; the Monte Carlo error of a 95% percentile bound is then about
# 1.5% of the interval's width (2.7 sigma / sqrt(2000)), below the printed digits of the IQM's.
RESAMPLES = 2_000
# Dirichlet posterior samples of the signed-rank test (baycomp's default is 50,000): the Monte Carlo
# standard error of each printed probability is at most 0.0035.
POSTERIOR_SAMPLES = 20_000
CONFIDENCE = 0.95
ROPE = 0.01  # one point of accuracy
PRIOR = 0.5  # baycomp's default weight of the signed-rank test's pseudo-observation at zero
PROFILE_TAUS = (0.5, 0.7, 0.8, 0.9, 0.95)  # the thresholds the page's profile table shows


@dataclass(frozen=True)
class Cells:
    """The runs of one training condition and family: for each method, each used dataset's scores in seed
    order. ``datasets`` are those where every method has a run; the others are ``left_out``."""

    methods: list[str]
    datasets: list[str]
    left_out: list[str]
    scores: dict[str, list[np.ndarray]]  # method -> one array per dataset in ``datasets``

    def flat(self, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All runs of ``method`` in one array, with each run's stratum start and stratum size."""
        parts = self.scores[method]
        sizes = np.array([len(p) for p in parts], dtype=np.int32)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
        return np.concatenate(parts), np.repeat(starts, sizes), np.repeat(sizes, sizes)


def cells(long: pd.DataFrame, train_condition: str, family: str = "clean") -> Cells:
    """The finite scores of ``long`` (benchmark.statistics.long_table) for one training condition."""
    values = long["accuracy"].to_numpy(float)
    keep = ((long["train_condition"].to_numpy(object) == train_condition)
            & (long["family"].to_numpy(object) == family) & np.isfinite(values))
    method = long["method"].to_numpy(object)[keep]
    dataset = long["dataset"].to_numpy(object)[keep]
    seed, values = long["seed"].to_numpy()[keep], values[keep]
    order = np.lexsort((seed, dataset, method))
    groups: dict[tuple[str, str], list[float]] = {}
    for m, d, v in zip(method[order].tolist(), dataset[order].tolist(), values[order].tolist(), strict=True):
        groups.setdefault((m, d), []).append(v)
    methods = sorted({m for m, _ in groups})
    every = sorted({d for _, d in groups})
    datasets = [d for d in every if all((m, d) in groups for m in methods)]
    left_out = [d for d in every if d not in datasets]
    return Cells(methods, datasets, left_out, {m: [np.array(groups[m, d]) for d in datasets] for m in methods})


def _rng(*keys: str) -> np.random.Generator:
    """The Generator of one interval: ``SEED`` and the CRC-32 of each key (stable across processes)."""
    return np.random.default_rng([SEED, *(zlib.crc32(k.encode()) for k in keys)])


def _resample(data: Cells, method: str, train_condition: str, resamples: int) -> np.ndarray:
    """Run indices (into ``Cells.flat``) of ``resamples`` stratified resamples, shape (resamples, runs):
    each dataset's runs drawn with replacement from that dataset's runs, the datasets kept (rliable's
    StratifiedBootstrap over runs, ``task_bootstrap=False``). One Generator per (training condition,
    method): the IQM and the probability of improvement read the same resamples."""
    _, starts, sizes = data.flat(method)
    u = _rng("runs", train_condition, method).random((resamples, len(sizes)))
    return starts + (u * sizes).astype(np.int32)


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` runs appears in each resample: (..., resamples, n) from (..., resamples, k)."""
    rows = np.arange(int(np.prod(indices.shape[:-1])), dtype=np.int64).reshape(indices.shape[:-1])
    flat = (rows[..., None] * n + indices).ravel()
    return np.bincount(flat, minlength=rows.size * n).reshape(*indices.shape[:-1], n).astype(float)


def _percentiles(stat: np.ndarray, confidence: float) -> np.ndarray:
    """Percentile interval along the last axis (``np.percentile``, linear, as arch's ``conf_int``):
    shape (2, ...)."""
    tail = 100 * (1 - confidence) / 2
    return np.percentile(stat, [tail, 100 - tail], axis=-1)


def iqm(values: np.ndarray) -> float:
    """The 25%-trimmed mean of all values (``scipy.stats.trim_mean(values, 0.25, axis=None)``)."""
    v = np.sort(np.ravel(values))
    cut = int(0.25 * len(v))
    return float(v[cut:len(v) - cut].mean())


def _improvement_kernels(data: Cells, methods: list[str], baseline: str) -> np.ndarray:
    """K_m with c_x' K_m c_y = P(X > Y) + P(X = Y)/2 averaged over datasets, for run counts c_x of method
    m and c_y of the baseline in the layout of ``Cells.flat`` (``methods`` share one layout): block
    diagonal, dataset d's block (1 + sign(x_i - y_j))/2 divided by n_x n_y D (rliable's Mann-Whitney U over
    n_x n_y, averaged over datasets). Shape (methods, runs_x, runs_y)."""
    xs = [data.scores[m] for m in methods]
    ys = data.scores[baseline]
    kernels = np.zeros((len(methods), sum(map(len, xs[0])), sum(map(len, ys))))
    i = j = 0
    for d, y in enumerate(ys):
        x = np.stack([parts[d] for parts in xs])  # (methods, runs of dataset d)
        block = (1 + np.sign(x[:, :, None] - y[None, None, :])) / 2
        kernels[:, i:i + x.shape[1], j:j + len(y)] = block / (x.shape[1] * len(y) * len(ys))
        i, j = i + x.shape[1], j + len(y)
    return kernels


@dataclass(frozen=True)
class Summary:
    """IQM and probability of improvement of each method (in ``methods`` order), fractions; the intervals'
    bounds are (2, methods) arrays; P(improvement) is NaN for the baseline and without one."""

    methods: list[str]
    runs: np.ndarray
    iqm: np.ndarray
    iqm_ci: np.ndarray
    improvement: np.ndarray
    improvement_ci: np.ndarray

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The IQM table and the probability-of-improvement table (methods other than the baseline)."""
        iqm_frame = pd.DataFrame({"method": self.methods, "iqm": self.iqm, "ci_low": self.iqm_ci[0],
                                  "ci_high": self.iqm_ci[1], "runs": self.runs})
        keep = np.isfinite(self.improvement)
        improvement = pd.DataFrame({"method": np.array(self.methods, dtype=object)[keep],
                                    "p_improvement": self.improvement[keep], "ci_low": self.improvement_ci[0][keep],
                                    "ci_high": self.improvement_ci[1][keep]})
        return iqm_frame, improvement


def summarise(data: Cells, baseline: str | None, train_condition: str, resamples: int | None = None,
              confidence: float = CONFIDENCE) -> Summary:
    """IQM and probability of improvement with their stratified bootstrap intervals, from one set of
    resamples per method: a method's resamples serve its IQM and, against the baseline's own resamples
    (an independent Generator), its probability of improvement, the two samples resampled independently
    within each dataset (rliable's StratifiedIndependentBootstrap). Methods with the same runs per dataset
    are computed together."""
    resamples = resamples or RESAMPLES
    m = len(data.methods)
    out = Summary(list(data.methods), np.zeros(m, dtype=int), np.zeros(m), np.zeros((2, m)),
                  np.full(m, np.nan), np.full((2, m), np.nan))
    base = None
    if baseline is not None:
        base = _counts(_resample(data, baseline, train_condition, resamples), len(data.flat(baseline)[0]))
    layouts: dict[tuple[int, ...], list[int]] = {}
    for k, method in enumerate(data.methods):
        layouts.setdefault(tuple(map(len, data.scores[method])), []).append(k)
    for members in layouts.values():
        names = [data.methods[k] for k in members]
        values = np.stack([data.flat(name)[0] for name in names])  # (group, runs)
        index = np.stack([_resample(data, name, train_condition, resamples) for name in names])
        boot = np.take_along_axis(values[:, None, :], index, axis=2)
        boot.sort(axis=2)
        n = values.shape[1]
        cut = int(0.25 * n)
        out.runs[members] = n
        out.iqm[members] = [iqm(v) for v in values]
        out.iqm_ci[:, members] = _percentiles(boot[:, :, cut:n - cut].mean(axis=2), confidence)
        others = [k for k in members if data.methods[k] != baseline]
        if base is None or not others:
            continue
        rows = [members.index(k) for k in others]
        kernels = _improvement_kernels(data, [data.methods[k] for k in others], baseline)
        stat = np.einsum("gbj,bj->gb", _counts(index[rows], n) @ kernels, base)
        out.improvement[others] = kernels.sum(axis=(1, 2))  # every run once: c_x = c_y = 1
        out.improvement_ci[:, others] = _percentiles(stat, confidence)
    return out


def iqm_intervals(data: Cells, train_condition: str, resamples: int | None = None,
                  confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Each method's IQM over all its runs on the used datasets, with the stratified bootstrap interval."""
    return summarise(data, None, train_condition, resamples, confidence).frames()[0]


def probability_of_improvement(data: Cells, baseline: str, train_condition: str, resamples: int | None = None,
                               confidence: float = CONFIDENCE) -> pd.DataFrame:
    """P(method > baseline) per dataset over all pairs of runs, averaged over datasets, with its stratified
    bootstrap interval (see ``summarise``)."""
    return summarise(data, baseline, train_condition, resamples, confidence).frames()[1]


def _profiles(data: Cells, taus: np.ndarray) -> np.ndarray:
    """(methods, taus): the share of each method's runs scoring above each tau."""
    out = np.empty((len(data.methods), len(taus)))
    for k, method in enumerate(data.methods):
        values = np.sort(np.concatenate(data.scores[method]))
        out[k] = 1.0 - np.searchsorted(values, taus, side="right") / len(values)
    return out


def performance_profiles(data: Cells, taus: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Each method's share of runs (on the used datasets) scoring above each tau: rliable's score
    distribution (``create_performance_profile`` with ``use_score_distribution=True``), without its
    bootstrap bands. Long format (method, tau, fraction), for a figure and for the page's table."""
    taus = np.linspace(0.0, 1.0, 101) if taus is None else np.asarray(taus, dtype=float)
    profile = _profiles(data, taus)
    return pd.DataFrame({"method": np.repeat(np.array(data.methods, dtype=object), len(taus)),
                         "tau": np.tile(taus, len(data.methods)), "fraction": profile.ravel()})


def _heaviside(a: np.ndarray, threshold: float) -> np.ndarray:
    return (a > threshold).astype(float) + 0.5 * (a == threshold).astype(float)


@functools.lru_cache(maxsize=4)
def _posterior_weights(n_datasets: int, prior: float, samples: int) -> np.ndarray:
    """Products w_i w_j of Dirichlet(prior, 1, ..., 1) samples, shape (samples, (n+1)^2): the posterior
    draws of the signed-rank test depend only on the number of datasets, so every comparison (and every
    training condition) reads the same draws, from a Generator seeded with ``SEED`` and the count."""
    weights = np.ones(n_datasets + 1)
    weights[0] = prior
    w = _rng("signed_rank", str(n_datasets), repr(prior)).dirichlet(weights, samples)
    return (w[:, :, None] * w[:, None, :]).reshape(samples, -1)


def _signed_rank_regions(diffs: np.ndarray, rope: float, products: np.ndarray) -> np.ndarray:
    """Winning-region shares (left, rope, right) for each row of ``diffs`` (y - x per dataset), shape
    (comparisons, 3): baycomp's w' H w for H = heaviside(-(d_i + d_j), 2 rope) and heaviside(d_i + d_j,
    2 rope), d = (0, y - x), all comparisons in one matrix product."""
    kernels = []
    for diff in diffs:
        d = np.concatenate([[0.0], diff])
        sums = d[:, None] + d[None, :]
        kernels += [_heaviside(-sums, 2 * rope).ravel(), _heaviside(sums, 2 * rope).ravel()]
    mass = products @ np.stack(kernels, axis=1)
    below, above = mass[:, 0::2], mass[:, 1::2]
    within = -below - above + 1  # baycomp's expression, for the same rounding
    left = (below >= within) & (below >= above)  # np.argmax's rule: the first of equal maxima wins
    middle = ~left & (within >= above)
    shares = np.stack([left.mean(axis=0), middle.mean(axis=0)], axis=1)
    return np.column_stack([shares, 1 - shares.sum(axis=1)])


def signed_rank_probs(x: np.ndarray, y: np.ndarray, rope: float = ROPE, *, prior: float = PRIOR,
                      samples: int | None = None) -> tuple[float, float, float]:
    """baycomp's ``SignedRankTest.probs(x, y, rope, prior=prior)``: (P(x better), P(equivalent),
    P(y better)), each the share of Dirichlet-process posterior samples in which that region has the
    largest posterior mass (x better: y - x below -rope)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check(x, y, rope)
    products = _posterior_weights(len(x), prior, samples or POSTERIOR_SAMPLES)
    left, same, right = _signed_rank_regions((y - x)[None, :], rope, products)[0]
    return float(left), float(same), float(right)


def _check(x: np.ndarray, y: np.ndarray, rope: float) -> None:
    if rope <= 0:
        raise ValueError("the comparison needs a region of practical equivalence: rope > 0")
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError("x and y must be 1-d arrays of the same length (one score per dataset)")


def _bayes(data: Cells, baseline: str, rope: float, samples: int | None) -> tuple[list[str], np.ndarray]:
    others = [m for m in data.methods if m != baseline]
    if rope <= 0:
        raise ValueError("the comparison needs a region of practical equivalence: rope > 0")
    if not others:
        return others, np.zeros((0, 3))
    y = np.array([s.mean() for s in data.scores[baseline]])
    diffs = np.array([[y_d - s.mean() for y_d, s in zip(y, data.scores[m], strict=True)] for m in others])
    return others, _signed_rank_regions(diffs, rope, _posterior_weights(len(y), PRIOR, samples or POSTERIOR_SAMPLES))


def bayesian_comparison(data: Cells, baseline: str, rope: float = ROPE, samples: int | None = None) -> pd.DataFrame:
    """Each method against ``baseline`` with the Bayesian signed-rank test over the used datasets, on the
    per-dataset mean over seeds (the unit is the dataset, as baycomp's test expects)."""
    others, probs = _bayes(data, baseline, rope, samples)
    return pd.DataFrame({"method": others, "p_better": probs[:, 0], "p_rope": probs[:, 1], "p_worse": probs[:, 2]},
                        columns=["method", "p_better", "p_rope", "p_worse"])


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """One BLAS thread for the small matrix products here: on the 2-core machine, beside the rebuild's
    other processes, OpenBLAS's threads made this section 3-4x slower (threadpoolctl is in the lock)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _bracket(value: float, lo: float, hi: float, scale: float, digits: int) -> str:
    return f"{value * scale:.{digits}f} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


def aggregates_markdown(long: pd.DataFrame, baseline: str | None, train_condition: str,
                        family: str = "clean") -> list[str]:
    """The page's across-dataset summary of one training condition: IQM, probability of improvement and
    the Bayesian comparison in one table, the performance profile at a few thresholds in another, each
    with the sentence that says its unit, resampling and seed."""
    from benchmark.report.markdown import md_table

    data = cells(long, train_condition, family)
    head = [f"### Across datasets, training: {train_condition} ({family} score)", ""]
    if len(data.datasets) < 2 or len(data.methods) < 2:
        return [*head, f"Too few datasets ({len(data.datasets)}) or methods with runs on every dataset "
                       "for an across-dataset summary.", ""]
    if baseline is not None and baseline not in data.methods:
        baseline = None
    with _one_blas_thread():
        summary = summarise(data, baseline, train_condition)
        bayes = dict(zip(*_bayes(data, baseline, ROPE, None), strict=True)) if baseline else {}
    order = np.argsort(-summary.iqm, kind="stable")
    header = ["method", "runs", "IQM (%) [95% interval]"]
    if baseline:
        header += [f"P(improvement over {baseline}) [95% interval]",
                   f"P(better) / P(equivalent) / P(worse) than {baseline}"]
    rows = []
    for k in order:
        method = data.methods[k]
        row = [method, int(summary.runs[k]), _bracket(summary.iqm[k], *summary.iqm_ci[:, k], 100, 1)]
        if baseline and method == baseline:
            row += ["(baseline)", "(baseline)"]
        elif baseline:
            row += [_bracket(summary.improvement[k], *summary.improvement_ci[:, k], 1, 2),
                    " / ".join(f"{p:.3f}" for p in bayes[method])]
        rows.append(row)
    n_d = len(data.datasets)
    left = f" Left out (a method has no run there): {', '.join(data.left_out)}." if data.left_out else ""
    lines = [*head, *md_table(header, rows), "",
             f"Unit: runs (seeds) within the {n_d} datasets where every method has runs ({', '.join(data.datasets)})."
             f"{left} IQM: the mean of the middle 50% of all runs pooled over those datasets (25% trimmed "
             f"mean), in points. Its interval and that of P(improvement) are 95% percentile intervals of a "
             f"stratified bootstrap (strata = datasets; runs resampled with replacement within each dataset, "
             f"the datasets kept), {RESAMPLES:,} resamples, numpy Generator seeded with {SEED} and the names "
             f"of the training condition and method (rliable's get_interval_estimates)."]
    if baseline:
        lines += ["",
                  f"P(improvement): per dataset, P(X > Y) + ½·P(X = Y) over all pairs of a method's and "
                  f"`{baseline}`'s seeds (the Mann–Whitney U over n_x·n_y), averaged over the {n_d} datasets "
                  f"(rliable's probability_of_improvement); in its bootstrap the method's and the baseline's "
                  f"runs are resampled independently within each dataset.",
                  "",
                  f"Bayesian comparison: baycomp's Bayesian signed-rank test (SignedRankTest) over the {n_d} "
                  f"datasets, on each dataset's mean over seeds, ROPE ±{ROPE * 100:g} point, prior weight "
                  f"{PRIOR} at zero difference, {POSTERIOR_SAMPLES:,} Dirichlet posterior samples (numpy "
                  f"Generator seeded with {SEED} and the number of datasets); each probability is the share of "
                  f"posterior "
                  f"samples in which that outcome (method better by more than the ROPE, within it, worse) is "
                  f"the most probable. baycomp's hierarchical test, which would also model the seed-to-seed "
                  f"spread, is not shown: it needs Stan (pystan, not in the pinned environment; here its model "
                  f"took 136 s to build and about 6 s per comparison to sample), and baycomp 1.0.3's "
                  f"implementation fails with an odd number of seeds when a dataset's difference does not vary "
                  f"over seeds."]
    profile = _profiles(data, np.asarray(PROFILE_TAUS))
    lines += ["", *md_table(["method", *(f"> {t * 100:g}%" for t in PROFILE_TAUS)],
                            [[data.methods[k], *(f"{v:.2f}" for v in profile[k])] for k in order]), "",
              f"Performance profile: the share of a method's runs (seeds within the {n_d} datasets, pooled) "
              f"whose score exceeds each threshold (rliable's score distribution, without bootstrap bands).",
              ""]
    return lines
