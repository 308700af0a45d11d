"""Every output of a suite's folder, rebuilt from its results: ``leaderboard.{md,csv,html}``, the
statistics page and an oracle table apart when there are several draws."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmark.leaderboard import build_table, with_tuning
from benchmark.report.diagnostics import diagnostics_markdown
from benchmark.report.html import render
from benchmark.report.markdown import md_table, to_markdown
from benchmark.report.stats_side import StatsRequest, StatsSide
from benchmark.results import Results
from benchmark.selection import DEFAULT_RULE, select, tuning_spread
from benchmark.statistics import (
    MARGIN,
    long_table,
    noninferior_marks,
    rank_scores,
)


def failure_names(results: Results) -> list[str]:
    """Each failed run as the statistics page names it."""
    return [f"{r.method} on {r.dataset} seed {r.spec.seed}" for r in results.failed]


def failure_lines(results: Results) -> list[str]:
    return [f"{r.method} on {r.dataset} seed {r.spec.seed}: {r.error.get('type', '')}: {r.error.get('message', '')}"
            for r in results.failed]


def mean_ranks(table: pd.DataFrame) -> pd.DataFrame:
    """Each method's mean rank over the datasets (1 = best, ties share a rank: ``rank_scores``, the
    statistics page's ranking) on the clean primary score, one column per training condition."""
    out = {}
    for cond, part in table.groupby("train_condition", sort=True):
        score = part.pivot(index="method", columns="dataset", values="clean_primary")
        out[cond] = rank_scores(score, axis=0).mean(axis=1)
    return pd.DataFrame(out)


def rank_shift_markdown(results: Results, tuned: pd.DataFrame, baseline: str | None, rule: str) -> list[str]:
    """How far tuning moves each method: its mean rank with its default hyperparameters (draw 0 of every
    method) against its rank with the draw ``rule`` selected."""
    defaults = dataclasses.replace(results, records=[r for r in results.records if r.spec.draw == 0],
                                   table=results.table[results.table["draw"] == 0])
    before, after = mean_ranks(build_table(defaults, baseline)), mean_ranks(tuned)
    rows = []
    for cond in after.columns:
        for method in after[cond].sort_values(kind="stable").index:
            b, a = before.loc[method, cond], after.loc[method, cond]
            rows.append([cond, method, f"{b:.2f}", f"{a:.2f}", f"{a - b:+.2f}"])
    return ["## Default against tuned hyperparameters", "",
            f"Each method's mean rank over the datasets (clean primary score; 1 = best) with its defaults (draw 0) "
            f"and with the draw `{rule}` selected; a negative change is a better rank after tuning.", "",
            *md_table(["training", "method", "rank, defaults", "rank, tuned", "change"], rows), ""]


def write_reports(results: Results, out_dir: Path, suite: str, baseline: str | None = None,
                  rule: str = DEFAULT_RULE, figures_dir: Path | None = None, margin: float = MARGIN,
                  side: StatsSide | None = None) -> pd.DataFrame:
    """Select one hyperparameter draw per method with ``rule`` (a query over the results), then write
    the tables, the statistics and the HTML page (the claims scorecard reads several suites: it is
    ``python -m benchmark claims``). With several draws, an oracle-selected table (test data) is written
    apart. The statistics (the leaderboard's non-inferiority marks and the statistics page) are computed by
    ``side``, a process of their own (benchmark.report.stats_side; started here when not given) while this
    one writes the leaderboard. ``margin`` is the non-inferiority margin of the ✓ (a fraction)."""
    side = side or StatsSide.start()
    try:
        selected, chosen = select(results, rule)
        long = long_table(selected.table, selected.primary_metrics())
        out_dir.mkdir(parents=True, exist_ok=True)
        t = selected.table
        accuracies = t[(t["split"] == "test") & (t["metric"] == "accuracy")] if not t.empty else t
        side.submit(StatsRequest(long, accuracies, failure_names(selected), baseline, out_dir, margin))
        table = write_leaderboard(results, selected, chosen, long, lambda: side.marks()[1], out_dir, suite,
                                  baseline, rule, figures_dir, margin)
    except BaseException:
        side.close()
        raise
    side.finish()
    return table


#: The non-inferiority columns of ``leaderboard.csv`` (clean primary score; Δ = method - best, a fraction).
NONINFERIORITY_TABLE_COLUMNS = {"best": "primary_is_best", "delta": "primary_delta_to_best",
                                "ci_low": "primary_delta_to_best_ci_low", "ci_high": "primary_delta_to_best_ci_high",
                                "p_holm": "primary_noninferiority_p_holm", "noninferior": "primary_noninferior"}


def with_noninferiority(table: pd.DataFrame, noninferior: pd.DataFrame) -> pd.DataFrame:
    """The clean family's non-inferiority rows (the clean primary score) as columns of the leaderboard."""
    if table.empty:
        return table
    clean = noninferior[noninferior["family"] == "clean"].rename(columns=NONINFERIORITY_TABLE_COLUMNS)
    keys = ["dataset", "train_condition", "method"]
    out = table.merge(clean[[*keys, *NONINFERIORITY_TABLE_COLUMNS.values()]], on=keys, how="left")
    for col in ("primary_is_best", "primary_noninferior"):
        out[col] = out[col].astype("boolean").fillna(False).astype(bool)
    return out


def write_leaderboard(results: Results, selected: Results, chosen: dict, long: pd.DataFrame,
                      noninferior: Callable[[], pd.DataFrame], out_dir: Path, suite: str, baseline: str | None,
                      rule: str, figures_dir: Path | None, margin: float = MARGIN) -> pd.DataFrame:
    """``leaderboard.{csv,md,html}`` (and the oracle table apart when there are several draws).
    ``noninferior()`` gives the non-inferiority table; asked for once this process's table is built."""
    spread = tuning_spread(results)
    table = with_tuning(build_table(selected, baseline), chosen, spread, rule)
    noninferior = noninferior()
    table = with_noninferiority(table, noninferior)
    marks = noninferior_marks(noninferior)
    table.to_csv(out_dir / "leaderboard.csv", index=False, float_format="%.6g")
    md = to_markdown(table, suite, failure_lines(selected), baseline, rule, marks, results.notes(), margin)
    if any(n > 1 for n, _ in spread.values()):
        oracle_results, oracle_chosen = select(results, "oracle_test")
        oracle = with_tuning(build_table(oracle_results, baseline), oracle_chosen, spread, "oracle_test")
        oracle.to_csv(out_dir / "leaderboard_oracle.csv", index=False, float_format="%.6g")
        (out_dir / "leaderboard_oracle.md").write_text(
            to_markdown(oracle, suite, [], baseline, "oracle_test").replace(
                "# Leaderboard:", "# NOT A LEADERBOARD (oracle selection on test data):", 1))
        md += "\nAn oracle selection on test data, for reference only, is in `leaderboard_oracle.md`.\n"
        md += "\n" + "\n".join(rank_shift_markdown(results, table, baseline, rule))
    md += diagnostics_markdown(selected)
    (out_dir / "leaderboard.md").write_text(md)
    if not table.empty:
        (out_dir / "leaderboard.html").write_text(render(table, long, marks, selected, suite, rule, out_dir,
                                                         figures_dir))
    return table
