"""Claims as tests with valid units: each paper's claim (and each known answer of the synthetic data)
checked on the stored records, with its unit, n, effect, 95% interval, p-value and verdict.

Why units matter: the conditions of one run, the seeds of one dataset and the training conditions of one
dataset are correlated, so pooling them as independent values makes any difference "significant". Every
check here first reduces the records to **one value per run** (a family's mean or worst case within the
run, a coverage averaged over modalities), then to one value per unit:

- **datasets** when the claim spans several: the per-dataset mean over seeds, tested across datasets with
  the Wilcoxon signed-rank test (exact; Demšar 2006) when there are at least 6, otherwise a t-test;
- **seeds** when the claim reads one dataset: each seed is an independent run (its own split draw and
  initialisation), tested with a t-test over seeds;
- **runs** where a claim is about every run (conformal coverage): one value per run, a t-test over runs.

Verdicts: ``supported`` (the one-sided test in the claimed direction rejects at ALPHA), ``not supported``
(the one-sided test in the opposite direction rejects), ``inconclusive`` (neither, or the data are not
there; the row says which data were missing). A non-inferiority claim states its margin: supported means
"shown no worse than the margin", not supported means "shown worse by more than the margin".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.records import RunRecord
from benchmark.results import Results
from benchmark.statistics import ALPHA, mean_interval

#: The index every per-run value carries: one value per (row label, dataset, training condition, seed).
RUN_KEYS = ["method", "dataset", "train_condition", "seed"]

#: Below this many datasets the Wilcoxon signed-rank test cannot reach ALPHA one-sided (n = 5 gives
#: 1/32 at best) and has little power; a t-test across datasets is used instead and named.
MIN_DATASETS_FOR_WILCOXON = 6

RunValues = Callable[[Results], pd.Series]


@dataclass(frozen=True)
class Verdict:
    verdict: str
    p: float
    effect: float | None
    low: float | None
    high: float | None
    unit: str
    n: int
    test: str
    used: str
    scale: float = 100.0
    effect_unit: str = "points"

    def effect_text(self) -> str:
        if self.effect is None or not np.isfinite(self.effect):
            return "—"
        text = f"{self.effect * self.scale:+.2f}"
        if self.low is not None and np.isfinite(self.low):
            text += f" [{self.low * self.scale:+.2f}, {self.high * self.scale:+.2f}]"
        return f"{text} {self.effect_unit}".strip()


@dataclass(frozen=True)
class Claim:
    key: str
    method: str
    source: str
    statement: str
    #: The suite whose records the claim reads.
    suite: str
    check: Callable[[Results], Verdict]
    #: "paper" for a paper's claim, "known answer" for what the synthetic data's construction fixes.
    kind: str = "paper"
    #: A suite with the same rows at a matched parameter budget: the claim is checked there too.
    matched_suite: str | None = None


# ---------------------------------------------------------------------------------------------------
# One value per run


def _test_accuracy(results: Results, metric: str = "accuracy") -> pd.DataFrame:
    t = results.table
    part = t[(t["split"] == "test") & (t["metric"] == metric) & (t["status"] == "ok")]
    return part[[*RUN_KEYS, "condition", "family", "value"]].astype({"method": str, "dataset": str,
                                                                      "train_condition": str, "condition": str,
                                                                      "family": str})


def family_value(family: str, how: str = "mean", metric: str = "accuracy") -> RunValues:
    """Each run's mean (or worst, ``how="worst"``: the paper's robust accuracy) over its family's
    conditions."""
    def values(results: Results) -> pd.Series:
        part = _test_accuracy(results, metric)
        part = part[part["family"] == family]
        g = part.groupby(RUN_KEYS)["value"]
        return g.min() if how == "worst" else g.mean()
    return values


def condition_value(condition: str, metric: str = "accuracy") -> RunValues:
    def values(results: Results) -> pd.Series:
        part = _test_accuracy(results, metric)
        return part[part["condition"] == condition].groupby(RUN_KEYS)["value"].mean()
    return values


def drop_from_clean(family: str, how: str = "mean") -> RunValues:
    """Clean accuracy minus the family's (mean or worst) accuracy, within each run."""
    def values(results: Results) -> pd.Series:
        clean = condition_value("clean")(results)
        other = family_value(family, how)(results)
        return (clean - other).dropna()
    return values


def record_value(of: Callable[[RunRecord], float | None]) -> RunValues:
    """A value each record carries (extras, fit summary); records without it are left out."""
    def values(results: Results) -> pd.Series:
        rows = {}
        for r in results.ok:
            v = of(r)
            if v is not None and np.isfinite(v):
                rows[(r.spec.label or r.method, r.dataset, r.spec.train_condition, r.spec.seed)] = float(v)
        index = pd.MultiIndex.from_tuples(list(rows), names=RUN_KEYS) if rows else \
            pd.MultiIndex.from_arrays([[]] * len(RUN_KEYS), names=RUN_KEYS)
        return pd.Series(list(rows.values()), index=index, dtype=float)
    return values


# ---------------------------------------------------------------------------------------------------
# Units and tests


def _no_spread(d: np.ndarray) -> bool:
    return len(d) == 0 or bool(np.allclose(d, d[0]))


def _one_sided(d: np.ndarray, test: str) -> tuple[float, float]:
    """p-values of mean(d) > 0 and mean(d) < 0 (``test``: "t" or "wilcoxon"). Without spread the t
    statistic is undefined: a constant d gets the exact sign test instead (n units all on one side:
    p = 0.5^n, what the exact Wilcoxon test gives too), and d = 0 gives 1 both ways."""
    if _no_spread(d):
        c = d[0] if len(d) else 0.0
        sign = 0.5 ** len(d)
        return (sign, 1.0) if c > 0 else (1.0, sign) if c < 0 else (1.0, 1.0)
    if test == "wilcoxon":
        return (float(stats.wilcoxon(d, alternative="greater").pvalue),
                float(stats.wilcoxon(d, alternative="less").pvalue))
    return (float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue),
            float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue))


def by_unit(values: pd.Series, unit: str = "auto") -> tuple[np.ndarray, str, str, list[str]]:
    """Reduce per-run values (indexed by dataset and seed) to one value per unit. Returns the values,
    the unit's name, the test to use and the datasets involved."""
    datasets = sorted(values.index.get_level_values("dataset").unique())
    if unit == "runs":
        return values.to_numpy(float), "runs", "t", datasets
    if len(datasets) >= 2:
        per = values.groupby(level="dataset").mean()
        test = "wilcoxon" if len(per) >= MIN_DATASETS_FOR_WILCOXON else "t"
        return per.to_numpy(float), "datasets", test, datasets
    return values.to_numpy(float), f"seeds of {datasets[0]}" if datasets else "seeds", "t", datasets


_TEST_NAMES = {"wilcoxon": "one-sided Wilcoxon signed-rank test", "t": "one-sided t-test"}


def _verdict(d: np.ndarray, unit: str, test: str, what: str, used: str, margin: float = 0.0,
             scale: float = 100.0, effect_unit: str = "points") -> Verdict:
    """Decide on per-unit values d (already oriented so that the claim says d > -margin)."""
    test_name = "one-sided exact sign test (no spread: a t statistic is undefined)" \
        if len(d) >= 2 and _no_spread(d + margin) else _TEST_NAMES[test]
    name = f"{test_name} over {unit.split(' of ')[0]} of {what}"
    if margin:
        name += f" > −{margin * scale:g} {effect_unit} (non-inferiority margin)"
    if len(d) < 2:
        return Verdict("inconclusive", float("nan"), None, None, None, unit, len(d), name,
                       f"not enough units ({len(d)}): {used}", scale, effect_unit)
    p_g, p_l = _one_sided(d + margin, test)
    verdict = "supported" if p_g < ALPHA else "not supported" if p_l < ALPHA else "inconclusive"
    mean, lo, hi = mean_interval(d)
    return Verdict(verdict, p_g, mean, lo, hi, unit, len(d), name, used, scale, effect_unit)


def _select(values: pd.Series, row: str, train_condition: str, datasets: tuple[str, ...] | None) -> pd.Series:
    if values.empty:
        return values
    idx = values.index
    keep = (idx.get_level_values("method") == row) & (idx.get_level_values("train_condition") == train_condition)
    if datasets:
        names = pd.Series(idx.get_level_values("dataset")).str.split("[", regex=False).str[0].to_numpy()
        keep &= np.isin(names, datasets)
    return values[keep].droplevel(["method", "train_condition"])


def compare(a: str, b: str, value: RunValues, what: str, train_condition: str = "standard",
            datasets: tuple[str, ...] | None = None, margin: float = 0.0, lower_is_better: bool = False
            ) -> Callable[[Results], Verdict]:
    """Row ``a`` beats row ``b`` on ``value`` (higher is better unless ``lower_is_better``), paired by
    dataset and seed, one value per unit; with ``margin`` > 0 a non-inferiority test (a no worse than
    b by more than the margin)."""
    def check(results: Results) -> Verdict:
        v = value(results)
        va, vb = _select(v, a, train_condition, datasets), _select(v, b, train_condition, datasets)
        common = va.index.intersection(vb.index)
        diff = (va.loc[common] - vb.loc[common]) * (-1 if lower_is_better else 1)
        d, unit, test, names = by_unit(diff)
        used = (f"{a} and {b}, training {train_condition}: {len(common)} paired runs on "
                f"{', '.join(names) if names else 'no dataset'}")
        if not len(common):
            used = (f"no paired runs of {a} and {b} with training {train_condition}"
                    f"{' on ' + ', '.join(datasets) if datasets else ''}")
        sign = "−" if not lower_is_better else "− (lower is better: b − a)"
        return _verdict(d, unit, test, f"{a} {sign} {b}, {what}", used, margin)
    return check


def at_least(row: str, value: RunValues, bound: float, what: str, train_condition: str = "standard",
             datasets: tuple[str, ...] | None = None, unit: str = "auto", at_most: bool = False,
             margin: float = 0.0, scale: float = 100.0, effect_unit: str = "points") -> Callable[[Results], Verdict]:
    """Row's value is above ``bound`` (below with ``at_most``), one value per unit; with ``margin`` a
    non-inferiority test (value > bound − margin). The effect is value − bound (bound − value with
    ``at_most``)."""
    def check(results: Results) -> Verdict:
        v = _select(value(results), row, train_condition, datasets)
        d, unit_name, test, names = by_unit(v - bound, unit)
        if at_most:
            d = -d
        used = f"{row}, training {train_condition}: {len(v)} runs on {', '.join(names) if names else 'no dataset'}"
        rel = "≤" if at_most else "≥"
        return _verdict(d, unit_name, test, f"{what} {rel} {bound * scale:g} {effect_unit}".rstrip()
                        + f" (effect: {'bound − value' if at_most else 'value − bound'})", used, margin,
                        scale=scale, effect_unit=effect_unit)
    return check


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: Verdict
    matched: Verdict | None

    @property
    def survives(self) -> str:
        if self.claim.matched_suite is None:
            return "no matched-budget suite"
        if self.matched is None or self.matched.n < 2:
            return "not run"
        return "yes" if self.matched.verdict == self.verdict.verdict else f"no ({self.matched.verdict})"


def scorecard(claims: list[Claim], load: Callable[[str], Results | None]) -> list[ClaimResult]:
    """Every claim checked on its suite's records (``load(suite)``, None when the suite has none), and on
    its matched-budget suite where it has one."""
    cache: dict[str, Results | None] = {}

    def results_of(name: str) -> Results | None:
        if name not in cache:
            cache[name] = load(name)
        return cache[name]

    def run(claim: Claim, suite: str) -> Verdict:
        results = results_of(suite)
        if results is None or not results.ok:
            return Verdict("inconclusive", float("nan"), None, None, None, "—", 0, "—",
                           f"no records of suite {suite} (run: python -m benchmark run --suite {suite})")
        return claim.check(results)

    out = []
    for c in claims:
        matched = run(c, c.matched_suite) if c.matched_suite else None
        out.append(ClaimResult(c, run(c, c.suite), matched))
    return out
