"""The statistics page (``statistics.md`` and ``statistics_pairwise.csv``) written beside the leaderboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmark.report.markdown import md_table
from benchmark.results import Results
from benchmark.statistics import ALPHA, fmt_p, friedman, mixed_model, spread_tests

#: The families whose per-dataset means get a Friedman test across datasets.
RANKED_FAMILIES = ("clean", "missing", "noise", "covariate")


def write_statistics(long: pd.DataFrame, results: Results, pairwise: pd.DataFrame, baseline: str | None,
                     out_dir: Path, posthoc: str = "nemenyi", mixed: dict | Callable[[], dict] | None = None) -> str:
    """``mixed`` is ``mixed_model(long, baseline)`` when the caller computed it already, or what gives it
    when the page needs it (the result of a fit in the background)."""
    lines = ["# Statistics", "",
             f"Significance level {ALPHA}. Paired t-tests over seeds, Holm-corrected within each dataset, "
             "training condition, family and reference; d_z = mean paired difference / its standard deviation. "
             "Accuracies in points (%).", ""]
    failed = results.failed
    if failed:
        lines += [f"{len(failed)} failed run(s) are left out of every test below:", ""]
        lines += [f"- {r.method} on {r.dataset} seed {r.spec.seed}" for r in failed] + [""]

    lines += ["## Across datasets", ""]
    for fam in RANKED_FAMILIES:
        res = friedman(long, fam, posthoc)
        lines.append(f"### Friedman test, {fam} accuracy")
        lines.append("")
        lines.append(f"Blocks used: {', '.join(res['blocks_used']) or 'none'}; left out (a method missing): "
                     f"{', '.join(res['blocks_left_out']) or 'none'}.")
        if "note" in res:
            lines += ["", f"Not computed: {res['note']}.", ""]
            continue
        if "note_ties" in res:
            lines += ["", f"Note: {res['note_ties']}; p = 1 by definition."]
        lines += ["", f"chi2 = {res['statistic']:.3f}, p = {fmt_p(res['p'])}; critical difference of average "
                  f"ranks (Nemenyi, alpha {ALPHA}) = {res['critical_difference']:.3f}.", ""]
        lines += md_table(["method", "average rank"],
                          [[m, f"{r:.2f}"] for m, r in sorted(res["average_ranks"].items(), key=lambda kv: kv[1])])
        lines += ["", f"Post-hoc ({res['posthoc']}) p-values:", "", _matrix(res["posthoc_p"]), ""]
    if baseline:
        res = mixed() if callable(mixed) else mixed if mixed is not None else mixed_model(long, baseline)
        lines += [f"### Mixed model: accuracy ~ method + (1 | dataset) + (1 | seed), against `{baseline}`", ""]
        if "note" in res:
            lines += [f"Not computed: {res['note']}.", ""]
        else:
            lines += [f"n = {res['n']} runs, converged: {res['converged']}."
                      + (f" Warnings: {'; '.join(res['warnings'])}." if res["warnings"] else ""), "",
                      *md_table(["method", "effect (points)", "95% interval", "p"],
                                [[m, f"{e['effect'] * 100:+.2f}",
                                  f"[{e['ci_low'] * 100:+.2f}, {e['ci_high'] * 100:+.2f}]", fmt_p(e["p"])]
                                 for m, e in sorted(res["effects"].items())])]
            lines.append("")
        spread = spread_tests(results.table, baseline)
        lines += [f"### Spread over seeds and conditions against `{baseline}` (Brown-Forsythe)", ""]
        if spread.empty:
            lines += ["Not computed: no baseline runs.", ""]
        else:
            lines += md_table(["dataset", "method", "sd", "baseline sd", "p (Holm)"],
                              [[r.dataset, r.method, f"{r.sd * 100:.2f}", f"{r.baseline_sd * 100:.2f}", fmt_p(r.p_holm)]
                               for r in spread.itertuples()])
            lines.append("")

    lines += ["## Per dataset", ""]
    if not pairwise.empty:
        for (dataset, cond), part in pairwise.groupby(["dataset", "train_condition"]):
            lines += [f"### {dataset} (training: {cond})", ""]
            lines += md_table(
                ["family", "method", "vs", "difference (points)", "95% interval", "d_z", "pairs", "p (Holm)"],
                [[r.family, r.method, f"{r.reference} ({r.reference_method})", f"{r.mean_diff * 100:+.2f}",
                  f"[{r.ci_low * 100:+.2f}, {r.ci_high * 100:+.2f}]", f"{r.d_z:.2f}", r.n_pairs,
                  fmt_p(r.p_holm) + (" *" if r.significant else "")] for r in part.itertuples()])
            lines.append("")
    text = "\n".join(lines)
    (out_dir / "statistics.md").write_text(text)
    pairwise.to_csv(out_dir / "statistics_pairwise.csv", index=False, float_format="%.6g")
    return text


def _matrix(p: pd.DataFrame) -> str:
    cols = list(p.columns)
    return "\n".join(md_table(["", *cols], [[i, *(fmt_p(p.loc[i, c]) for c in cols)] for i in p.index]))


__all__ = ["write_statistics"]
