"""Critical difference diagrams of clean accuracy, one per training condition, with the datasets as
blocks (training conditions are never pooled as blocks): average ranks of the per-dataset means over
seeds, with the methods that Nemenyi's post-hoc test cannot tell apart joined by a bar (scikit-posthocs).
Drawn identically whatever the hash seed: scikit-posthocs draws a bar through a set of methods, whose
order follows string hashing, so each bar's points are put in rank order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scikit_posthocs as sp

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, condition_title, training_conditions, values
from benchmark.results import Results
from benchmark.statistics import friedman

COLUMNS = ["dataset", "train_condition", "method", "seed", "family", "accuracy"]


def draw(results: Results, out_dir: Path) -> list[Path]:
    acc = values(results)
    acc = acc[acc["family"] == "clean"].rename(columns={"value": "accuracy"})[COLUMNS]
    acc = acc.astype({c: str for c in ("dataset", "train_condition", "method", "family")})
    tests = {cond: friedman(acc[acc["train_condition"] == cond], "clean") for cond in training_conditions(acc)}
    if not tests or all("note" in res for res in tests.values()):
        raise NoData("Friedman test not computed: " + "; ".join(f"{c}: {r['note']}" for c, r in tests.items()))
    fig, axes = grid(len(tests), ncols=1, size=(6.5, 2.4))
    for ax, (cond, res) in zip(axes, tests.items(), strict=True):
        if "note" in res:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{condition_title(cond)}: not computed ({res['note']})", ha="center",
                    transform=ax.transAxes)
            continue
        drawn = sp.critical_difference_diagram(
            res["average_ranks"], res["posthoc_p"], ax=ax,
            color_palette={m: method_style(m)["color"] for m in res["average_ranks"]})
        for (line,) in drawn["crossbars"]:
            line.set_xdata(np.sort(line.get_xdata()))
        ax.set_title(f"{condition_title(cond)} — average rank of clean accuracy over {len(res['blocks_used'])} "
                     f"datasets (Friedman p = {res['p']:.3g}, CD = {res['critical_difference']:.2f})")
        ax.set_xlabel("average rank (1 = best)")
    return save(fig, out_dir, "fig_03_critical_difference")
