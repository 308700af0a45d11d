"""Critical difference diagrams of the clean score (each dataset's primary metric, as on the statistics
page), one panel per training condition, with the datasets as
blocks (training conditions are never pooled as blocks): average ranks of the per-dataset means over
seeds (``benchmark.statistics.rank_scores``: equal scores share a rank), with the methods that Nemenyi's
post-hoc test cannot tell apart joined by a bar (scikit-posthocs draws the diagram).
Drawn identically whatever the hash seed: scikit-posthocs finds the bars as sets (their order, and so
which bar goes to which height, follows string hashing), so every bar's points are put in rank order
and the bars are stacked again in a fixed order (by their ends, then their points)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scikit_posthocs as sp

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, condition_title, training_conditions
from benchmark.results import Results
from benchmark.statistics import friedman, long_table

COLUMNS = ["dataset", "train_condition", "method", "seed", "family", "accuracy"]


def restack(lines: list) -> None:
    """Put each crossbar's points in rank order and give the bars their heights (-1, -2, ...) by first
    fit in the order of (left end, right end, points): the fewest levels, as scikit-posthocs stacks
    them, but the same whatever order its sets came in."""
    bars = sorted(((tuple(np.sort(np.asarray(line.get_xdata(), dtype=float))), line) for line in lines),
                  key=lambda item: (item[0][0], item[0][-1], item[0]))
    levels: list[list[tuple[float, float]]] = []
    for xs, line in bars:
        low, high = xs[0], xs[-1]
        for i, taken in enumerate(levels):
            if not any(low <= other_high and other_low <= high for other_low, other_high in taken):
                taken.append((low, high))
                y = -i - 1
                break
        else:
            levels.append([(low, high)])
            y = -len(levels)
        line.set_data(list(xs), [y] * len(xs))


def draw(results: Results, out_dir: Path) -> list[Path]:
    # The statistics page's own table (the clean score in each dataset's primary metric), so that the
    # figure and the page show the same test.
    acc = long_table(results.table, results.primary_metrics())
    acc = acc[acc["family"] == "clean"][COLUMNS]
    acc = acc.astype({c: str for c in ("dataset", "train_condition", "method", "family")})
    tests = {cond: friedman(acc, "clean", train_condition=cond) for cond in training_conditions(acc)}
    if not tests or all("note" in res for res in tests.values()):
        raise NoData("Friedman test not computed: " + "; ".join(f"{c}: {r['note']}" for c, r in tests.items()))
    fig, axes = grid(len(tests), ncols=1, size=(6.5, 2.4))
    for ax, (cond, res) in zip(axes, tests.items(), strict=True):
        if "note" in res:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{condition_title(cond)}: not computed ({res['note']})", ha="center",
                    transform=ax.transAxes)
            continue
        ranks = dict(sorted(res["average_ranks"].items(), key=lambda kv: (kv[1], kv[0])))
        drawn = sp.critical_difference_diagram(
            ranks, res["posthoc_p"], ax=ax, color_palette={m: method_style(m)["color"] for m in ranks})
        restack([line for (line,) in drawn["crossbars"]])
        f, p_f, df1, df2 = res["iman_davenport"]
        ax.set_title(f"{condition_title(cond)} — average rank of the clean score (primary metric) over "
                     f"{len(res['blocks_used'])} "
                     f"datasets\n(Friedman p = {res['p']:.3g}, Iman–Davenport F({df1}, {df2}) = {f:.2f}, "
                     f"p = {p_f:.3g}; Nemenyi CD = {res['critical_difference']:.2f})", fontsize=8)
        ax.set_xlabel("average rank (1 = best)")
    return save(fig, out_dir, "fig_03_critical_difference")
