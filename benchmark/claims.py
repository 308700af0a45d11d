"""The claims scorecard: each paper's qualitative claim as a check on the stored records, with its test,
its p-value and a verdict.

A claim names the data it needs (methods, datasets, training condition, condition family). Verdicts:
``supported`` (the one-sided test in the claimed direction is significant), ``not supported`` (the test
in the opposite direction is significant), ``inconclusive`` (neither, or the data are not there; the
row says which data were missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.records import RunRecord, dataset_name
from benchmark.results import Results
from benchmark.statistics import ALPHA, long_table


@dataclass(frozen=True)
class Verdict:
    verdict: str
    p: float
    effect: str
    test: str
    used: str


@dataclass(frozen=True)
class Claim:
    method: str
    source: str
    statement: str
    check: Callable[[Results, pd.DataFrame], Verdict]


def _decide(p_greater: float, p_less: float) -> str:
    if p_greater < ALPHA:
        return "supported"
    if p_less < ALPHA:
        return "not supported"
    return "inconclusive"


def one_sided_p(d: np.ndarray) -> tuple[float, float]:
    """p-values of the one-sample t-tests of mean(d) > 0 and mean(d) < 0. Without spread the t statistic
    is undefined: a constant d is decided by its sign (0 or 1), and d = 0 gives 1 both ways."""
    if np.allclose(d, d[0]):
        return (0.0, 1.0) if d[0] > 0 else (1.0, 0.0) if d[0] < 0 else (1.0, 1.0)
    return (float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue),
            float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue))


def paired_greater(a: str, b: str, family: str = "clean", datasets: tuple[str, ...] | None = None,
                   train_condition: str = "standard", of: str = "accuracy") -> Callable[..., Verdict]:
    """a > b on the family's accuracy (or, with of="drop", a loses more than b from clean), paired over
    (dataset, seed); a one-sided paired t-test."""
    def check(results: Results, long: pd.DataFrame) -> Verdict:
        part = long[long["train_condition"] == train_condition]
        if datasets:
            # The table's dataset may be a variant ("synthetic_pid[noise=...]"); a claim names the dataset.
            part = part[part["dataset"].map(dataset_name).isin(datasets)]

        def values(method: str) -> pd.Series:
            rows = part[part["method"] == method]
            v = rows[rows["family"] == family].set_index(["dataset", "seed"])["accuracy"]
            if of == "drop":
                clean = rows[rows["family"] == "clean"].set_index(["dataset", "seed"])["accuracy"]
                v = clean - v
            return v.dropna()

        va, vb = values(a), values(b)
        common = va.index.intersection(vb.index)
        what = f"{'drop from clean to ' if of == 'drop' else ''}{family} accuracy, training {train_condition}"
        if len(common) < 2:
            return Verdict("inconclusive", float("nan"), "—", f"paired t-test of {a} − {b} ({what})",
                           f"not enough paired runs ({len(common)}); needs {a} and {b} on "
                           f"{', '.join(datasets) if datasets else 'any dataset'} with {train_condition}")
        d = (va.loc[common] - vb.loc[common]).to_numpy(float)
        used = f"{len(common)} (dataset, seed) pairs on {', '.join(sorted({i[0] for i in common}))}"
        return _one_sided(d, f"one-sided paired t-test of {a} − {b} ({what})", used)
    return check


def lower_spread(a: str, b: str, train_condition: str = "standard") -> Callable[..., Verdict]:
    """a's accuracy varies less over seeds than b's: Brown-Forsythe test on per-(dataset, condition)
    centred accuracies of every run (a dataset variant is a dataset of its own), direction from the
    standard deviations."""
    def check(results: Results, long: pd.DataFrame) -> Verdict:
        t = results.table
        acc = t[(t["split"] == "test") & (t["metric"] == "accuracy") & (t["train_condition"] == train_condition)]

        def centred(method: str) -> np.ndarray:
            rows = acc[acc["method"] == method]
            cells = [g.to_numpy(float) for _, g in rows.groupby(["dataset", "condition"], observed=True)["value"]]
            return np.concatenate([v - np.mean(v) for v in cells if len(v) > 1] or [np.array([])])

        va, vb = centred(a), centred(b)
        test = f"Brown-Forsythe test of the spread over seeds ({a} vs {b}, every condition, centred per cell)"
        if len(va) < 3 or len(vb) < 3:
            return Verdict("inconclusive", float("nan"), "—", test, f"needs several seeds of {a} and {b}")
        p = float(stats.levene(va, vb, center="median").pvalue)
        sa, sb = va.std(ddof=1), vb.std(ddof=1)
        verdict = "inconclusive" if p >= ALPHA else ("supported" if sa < sb else "not supported")
        return Verdict(verdict, p, f"sd {sa * 100:.2f} vs {sb * 100:.2f} points", test,
                       f"{len(va)} and {len(vb)} centred accuracies")
    return check


def coverage_at_least(method: str, nominal: float, margin: float = 0.02) -> Callable[..., Verdict]:
    """The method's marginal intervals cover at least ``nominal - margin`` of the test samples: a
    one-sided t-test over (run, modality) coverages, scored by the runner on the clean test split."""
    def check(results: Results, long: pd.DataFrame) -> Verdict:
        cov = [c for r in results.ok if r.method == method
               for c in r.body.get("extras_test", {}).get("marginal_coverage", {}).get("coverage", [])]
        test = f"one-sided t-test of test coverage > {nominal - margin:.2f} (nominal {nominal:.2f} − {margin:.2f})"
        if len(cov) < 2:
            return Verdict("inconclusive", float("nan"), "—", test, f"needs runs of {method} with extras_test")
        d = np.asarray(cov) - (nominal - margin)
        p_g, p_l = one_sided_p(d)
        return Verdict(_decide(p_g, p_l), p_g, f"mean coverage {np.mean(cov):.3f}", test,
                       f"{len(cov)} (run, modality) coverages")
    return check


def _paired_values(results: Results, a: str, b: str, value: Callable[[RunRecord], float | None],
                   where: Callable[[RunRecord], bool]) -> tuple[np.ndarray, str]:
    """Per (dataset, training condition, seed) differences value(a) - value(b) over the records that
    ``where`` keeps."""
    vals: dict[str, dict[tuple, float]] = {a: {}, b: {}}
    for r in results.ok:
        if r.method in vals and where(r):
            v = value(r)
            if v is not None:
                vals[r.method][(r.dataset, r.spec.train_condition, r.spec.seed)] = v
    common = sorted(set(vals[a]) & set(vals[b]))
    used = f"{len(common)} (dataset, training condition, seed) pairs"
    return np.array([vals[a][k] - vals[b][k] for k in common]), used


def _one_sided(d: np.ndarray, test: str, used: str, scale: float = 100.0, unit: str = "points") -> Verdict:
    if len(d) < 2:
        return Verdict("inconclusive", float("nan"), "—", test, f"not enough paired runs ({used})")
    p_g, p_l = one_sided_p(d)
    return Verdict(_decide(p_g, p_l), p_g, f"{d.mean() * scale:+.2f} {unit}", test, used)


def two_modality_pid(r: RunRecord) -> bool:
    return r.spec.dataset == "synthetic_pid" and r.spec.dataset_params.get("n_modalities") == 2


def smaller_gap(a: str, b: str, strong: str = "m0", weak: str = "m1") -> Callable[..., Verdict]:
    """a's modality gap, acc(only strong) - acc(only weak), is smaller than b's (two-modality
    synthetic_pid with a dominant modality); one-sided paired t-test of b's gap - a's gap."""
    def gap(r: RunRecord) -> float | None:
        m = r.metrics
        ks, kw = f"missing_pattern[{strong}]", f"missing_pattern[{weak}]"
        return m[ks]["accuracy"] - m[kw]["accuracy"] if ks in m and kw in m else None

    def check(results: Results, long: pd.DataFrame) -> Verdict:
        d, used = _paired_values(results, b, a, gap, two_modality_pid)
        return _one_sided(d, f"one-sided paired t-test of gap({b}) − gap({a}), gap = acc({strong} alone) − "
                          f"acc({weak} alone)", used + " on two-modality synthetic_pid")
    return check


def condition_greater(a: str, b: str, key: str, where: Callable[[RunRecord], bool] = two_modality_pid
                      ) -> Callable[..., Verdict]:
    def check(results: Results, long: pd.DataFrame) -> Verdict:
        d, used = _paired_values(results, a, b, lambda r: r.metrics.get(key, {}).get("accuracy"), where)
        return _one_sided(d, f"one-sided paired t-test of {a} − {b}, accuracy under {key}",
                          used + " on two-modality synthetic_pid")
    return check


CLAIMS: list[Claim] = [
    Claim("early_fusion", "multimodal fusion folklore; synergy needs joint features",
          "Early fusion beats late fusion where the label needs a cross-modal interaction "
          "(synthetic_pid, 20% synergistic samples).",
          paired_greater("early_fusion", "late_fusion", "clean", ("synthetic_pid",))),
    Claim("late_fusion", "multimodal fusion folklore; MultiBench",
          "Late fusion loses less accuracy than early fusion when modalities go missing.",
          paired_greater("early_fusion", "late_fusion", "missing", of="drop")),
    Claim("robult", "Robult (papers/robult.md)",
          "Robult keeps more accuracy than late fusion when modalities are missing.",
          paired_greater("robult", "late_fusion", "missing")),
    Claim("robult", "Robult (papers/robult.md)",
          "With 10% of the labels, Robult (semi-supervised) is more accurate than late fusion.",
          paired_greater("robult", "late_fusion", "clean", train_condition="labels[0.1]")),
    Claim("robult", "Robult (papers/robult.md)",
          "With 5% of the labels and unique information in each modality, Robult beats early fusion when one "
          "modality is left out (suite claim_robult).",
          paired_greater("robult", "early_fusion", "missing", ("synthetic_pid",), train_condition="labels[0.05]")),
    Claim("mm_dro", "Distributionally robust multimodal learning (papers/dro-multimodal.md)",
          "Modality-aware DRO has lower variance across seeds than the canonical non-robust model (early fusion).",
          lower_spread("mm_dro", "early_fusion")),
    Claim("mm_dro", "Distributionally robust multimodal learning (papers/dro-multimodal.md)",
          "Modality-aware DRO is more accurate than early fusion under a covariate shift of one modality.",
          paired_greater("mm_dro", "early_fusion", "covariate")),
    Claim("ef_dro", "Distributionally robust multimodal learning (papers/dro-multimodal.md)",
          "At equal budget, modality-aware DRO is more robust to a one-modality shift than early-fusion DRO.",
          paired_greater("mm_dro", "ef_dro", "covariate")),
    Claim("gmm_adaptive", "GMM-guided adaptive loss (papers/related-abstracts.md)",
          "The GMM-guided adaptive loss is more accurate than plain joint training (early fusion) when one "
          "modality dominates (synthetic_pid has unequal noise per modality).",
          paired_greater("gmm_adaptive", "early_fusion", "clean", ("synthetic_pid",))),
    Claim("gmm_adaptive", "GMM-guided adaptive loss (papers/related-abstracts.md)",
          "With one dominant modality, the GMM-guided loss leaves a smaller modality gap than early fusion "
          "(suite claim_gmm).", smaller_gap("gmm_adaptive", "early_fusion")),
    Claim("gmm_adaptive", "GMM-guided adaptive loss (papers/related-abstracts.md)",
          "With one dominant modality, the GMM-guided loss leaves a smaller modality gap than late fusion "
          "(suite claim_gmm).", smaller_gap("gmm_adaptive", "late_fusion")),
    Claim("gmm_adaptive", "GMM-guided adaptive loss (papers/related-abstracts.md)",
          "With one dominant modality, the weak modality alone is more accurate after GMM-guided training than "
          "after early fusion (suite claim_gmm).", condition_greater("gmm_adaptive", "early_fusion",
                                                                      "missing_pattern[m1]")),
    Claim("gmm_adaptive", "GMM-guided adaptive loss (papers/related-abstracts.md)",
          "With one dominant modality, the weak modality alone is more accurate after GMM-guided training than "
          "after late fusion (suite claim_gmm).", condition_greater("gmm_adaptive", "late_fusion",
                                                                     "missing_pattern[m1]")),
    Claim("conformal_shapley", "Conformal Shapley intervals (specs/conformal_shapley.md)",
          "The marginal split-conformal intervals of the modality Shapley values cover at the nominal rate "
          "(1 − α = 0.95) on the test split.",
          coverage_at_least("conformal_shapley", 0.95)),
]


def scorecard(results: Results, methods: set[str] | None = None,
              long: pd.DataFrame | None = None) -> list[tuple[Claim, Verdict]]:
    """Every claim of ``methods`` checked on ``results``; ``long`` is their ``long_table`` when the caller
    has it already."""
    long = long_table(results.table) if long is None else long
    return [(c, c.check(results, long)) for c in CLAIMS if methods is None or c.method in methods]
