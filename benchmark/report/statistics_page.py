"""The statistics page (``statistics.md`` and ``statistics_pairwise.csv``)
written beside the leaderboard: per training condition (never pooled),
the rank tests across datasets and the mixed model, then the spread over seeds, then every dataset's
paired tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.markdown import md_table
from benchmark.statistics import (
    ALPHA,
    MARGIN,
    RANK_DECIMALS,
    fmt_p,
    friedman_tests,
    mixed_models,
    noninferiority,
    noninferiority_text,
    spread_tests,
    training_conditions,
)

#: The families whose per-dataset means get a Friedman test across datasets.
RANKED_FAMILIES = ("clean", "missing", "noise", "covariate")

Mixed = Mapping[str, dict] | Callable[[], Mapping[str, dict]] | None


def write_statistics(long: pd.DataFrame, failed: list[str], accuracies: pd.DataFrame, pairwise: pd.DataFrame,
                     baseline: str | None,
                     out_dir: Path, posthoc: str = "nemenyi", mixed: Mixed = None,
                     noninferior: pd.DataFrame | None = None, margin: float = MARGIN,
                     extra: Mapping[str, list[str]] | None = None) -> str:
    """``mixed`` is ``mixed_models(long, baseline)`` (one fit per training condition) when the caller
    computed it already, or what gives it when the page needs it (the result of a fit in the background).
    ``extra``: Markdown lines per training condition, put at the end of that condition's section (for
    summaries computed elsewhere, e.g. aggregates across datasets). ``failed`` names the failed runs;
    ``accuracies`` is the tidy table's test-split accuracy rows (``spread_tests``)."""
    if noninferior is None:
        noninferior = noninferiority(pairwise, margin)
    lines = ["# Statistics", "",
             f"Significance level {ALPHA}. Accuracies in points (%). Training conditions are never pooled: every "
             "test across datasets is within one training condition, with the datasets as blocks (each block a "
             "method's mean over seeds; Demšar 2006). Ranks: 1 = best, scores rounded to "
             f"{RANK_DECIMALS} decimals first so that equal scores share their mean rank (one ranking for every "
             "table).", ""]
    if failed:
        lines += [f"{len(failed)} failed run(s) are left out of every test below:", ""]
        lines += [f"- {name}" for name in failed] + [""]

    ranked = friedman_tests(long, RANKED_FAMILIES, posthoc)
    spread = _spread_lines(spread_tests(accuracies, baseline), baseline) if baseline else []
    # The mixed models last: they may still be fitting in the background.
    fits = (mixed() if callable(mixed) else mixed) if baseline else None
    if baseline and fits is None:
        fits = mixed_models(long, baseline)
    for cond in training_conditions(long):
        lines += [f"## Across datasets (training: {cond})", ""]
        for fam in RANKED_FAMILIES:
            lines += _friedman_lines(ranked[(cond, fam)], cond)
        if baseline and fits is not None and cond in fits:
            lines += _mixed_lines(fits[cond], baseline, cond)
        lines += list((extra or {}).get(cond, []))
    lines += spread

    lines += ["## Per dataset", "",
              "Paired t-tests over seeds (method - reference), Holm-corrected within each dataset, training "
              "condition, family and reference; d_z = mean paired difference / its standard deviation. "
              f"Non-inferior (rows against the best): {noninferiority_text(margin)[3:]}", ""]
    if not pairwise.empty:
        keys = ["dataset", "train_condition", "family", "method"]
        ni = {key: ("yes" if ok else "no") + f" ({fmt_p(p)})" for key, ok, p in zip(
            zip(*(noninferior[c] for c in keys), strict=True), noninferior["noninferior"], noninferior["p_holm"],
            strict=True)}
        for (dataset, cond), part in pairwise.groupby(["dataset", "train_condition"]):
            lines += [f"### {dataset} (training: {cond})", ""]
            rows = []
            for r in part.itertuples():
                key = (r.dataset, r.train_condition, r.family, r.method)
                verdict = ni.get(key, "—") if r.reference == "best" else "—"
                rows.append([r.family, r.method, f"{r.reference} ({r.reference_method})", f"{r.mean_diff * 100:+.2f}",
                             f"[{r.ci_low * 100:+.2f}, {r.ci_high * 100:+.2f}]", f"{r.d_z:.2f}", r.n_pairs,
                             fmt_p(r.p_holm) + (" *" if r.significant else ""), verdict])
            lines += md_table(["family", "method", "vs", "difference (points)", "95% t-interval", "d_z", "pairs",
                               "p (Holm)", f"non-inferior within {margin * 100:g} (p Holm)"], rows)
            lines.append("")
    text = "\n".join(lines)
    (out_dir / "statistics.md").write_text(text)
    pairwise.to_csv(out_dir / "statistics_pairwise.csv", index=False, float_format="%.6g")
    return text


def _friedman_lines(res: dict, cond: str) -> list[str]:
    fam = res["family"]
    lines = [f"### Friedman test, {fam} accuracy (training: {cond})", "",
             f"Datasets used: {', '.join(res['blocks_used']) or 'none'}; left out (a method missing): "
             f"{', '.join(res['blocks_left_out']) or 'none'}."]
    if "note" in res:
        return [*lines, "", f"Not computed: {res['note']}.", ""]
    if "note_ties" in res:
        lines += ["", f"Note: {res['note_ties']}; p = 1 by definition."]
    k, n = len(res["methods"]), len(res["blocks_used"])
    f, p_f, df1, df2 = res["iman_davenport"]
    ranks = res["average_ranks"]
    cd = res["critical_difference"]
    order = sorted(ranks, key=lambda m: (ranks[m], m))
    apart = [f"{a} – {b}" for i, a in enumerate(order) for b in order[i + 1:] if ranks[b] - ranks[a] > cd]
    lines += ["", f"{k} methods, {n} datasets. Friedman chi2 = {res['statistic']:.3f}, p = {fmt_p(res['p'])}; "
              f"Iman–Davenport F({df1}, {df2}) = {f:.3f}, p = {fmt_p(p_f)}. Critical difference of average ranks "
              f"(Nemenyi, α {ALPHA}; the CD diagram's numbers) = {cd:.3f}; pairs further apart than it: "
              f"{', '.join(apart) or 'none'}.", ""]
    lines += md_table(["method", "average rank"], [[m, f"{ranks[m]:.2f}"] for m in order])
    lines += ["", f"Post-hoc ({res['posthoc']}) p-values:", "", _matrix(res["posthoc_p"].loc[order, order]), ""]
    w = res["wilcoxon"]
    place = {m: i for i, m in enumerate(order)}
    sym = np.ones((len(order), len(order)))
    i, j = w["method"].map(place).to_numpy(), w["other"].map(place).to_numpy()
    sym[i, j] = sym[j, i] = w["p_holm"].to_numpy()
    sym = pd.DataFrame(sym, index=order, columns=order)
    lines += [f"Wilcoxon signed-rank over the {n} datasets, each pair, Holm-corrected over the {len(w)} pairs "
              f"(Benavoli et al. 2016; exact null distribution, zero differences dropped; with {n} datasets the "
              f"smallest possible p before correction is {2 / 2 ** n:.3g}):", "", _matrix(sym), ""]
    return lines


def _mixed_lines(res: dict, baseline: str, cond: str) -> list[str]:
    lines = [f"### Mixed model (training: {cond}): accuracy ~ method + (1 | dataset) + (1 | seed in dataset) + "
             f"(1 | method × dataset), against `{baseline}`", ""]
    if "note" in res:
        return [*lines, f"Not computed: {res['note']}.", ""]
    label = {"method": "method × dataset", "seed": "seed in dataset"}
    sds = ", ".join(f"{label.get(name, name)} {v ** 0.5 * 100:.2f}" for name, v in res["variance_components"].items())
    warned = f" Warnings: {'; '.join(w.rstrip('.') for w in res['warnings'])}." if res["warnings"] else ""
    lines += [f"{res['family']} accuracy, n = {res['n']} runs, REML log-likelihood {res['log_likelihood']:.1f}; "
              f"standard deviations of the components (points): {sds}. One residual variance for all methods "
              f"(MixedLM's assumption).{warned}", ""]
    if res["converged"]:
        lines += md_table(["method", "effect (points)", "95% interval", "p"],
                          [[m, f"{e['effect'] * 100:+.2f}", f"[{e['ci_low'] * 100:+.2f}, {e['ci_high'] * 100:+.2f}]",
                            fmt_p(e["p"])] for m, e in sorted(res["effects"].items())])
    else:
        lines += ["**The fit did not converge**: the estimates below are where the optimiser stopped; no interval "
                  "and no p-value is given.", "",
                  *md_table(["method", "effect (points), not converged"],
                            [[m, f"{e['effect'] * 100:+.2f}"] for m, e in sorted(res["effects"].items())])]
    return [*lines, ""]


def _spread_lines(spread: pd.DataFrame, baseline: str) -> list[str]:
    lines = [f"## Spread over seeds against `{baseline}`", "",
             "Seeds are the unit. In each cell (dataset, training condition, test condition) the standard deviation "
             "of accuracy over seeds, centred on the cell's own mean (differences between conditions never count "
             "as spread); a method's spread on a dataset is the mean of its cells' SDs. The cells of a dataset come "
             "from the same runs, so the dataset is the unit of the test: Wilcoxon signed-rank over datasets, method "
             "against baseline, paired, Holm-corrected across methods within each training condition. SDs: median "
             "over datasets (points); ratio: median of method / baseline.", ""]
    if spread.empty:
        return [*lines, "Not computed: no baseline runs.", ""]
    rows = [[r.train_condition, r.method, r.n_datasets, r.cells, f"{r.sd * 100:.2f}", f"{r.baseline_sd * 100:.2f}",
             f"{r.ratio:.2f}", fmt_p(r.p), fmt_p(r.p_holm) + (" *" if r.p_holm < ALPHA else "")]
            for r in spread.itertuples()]
    return [*lines, *md_table(["training", "method", "datasets", "cells", "sd", "baseline sd", "ratio", "p",
                               "p (Holm)"], rows), ""]


def _matrix(p: pd.DataFrame) -> str:
    values = p.to_numpy(float)
    return "\n".join(md_table(["", *p.columns], [[name, *map(fmt_p, row)] for name, row in zip(p.index, values,
                                                                                                  strict=True)]))


__all__ = ["write_statistics"]
