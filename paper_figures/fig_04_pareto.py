"""Accuracy against training time and against training FLOPs, per dataset, one point per method (mean
over seeds), with the Pareto front (no other method both cheaper and more accurate) marked, for the
``standard`` training condition (the title names the one drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, condition_title, main_condition, of_condition, values
from benchmark.results import Results


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points that no other point beats on both cost (lower) and accuracy (higher)."""
    return [i for i, (c, a) in enumerate(points)
            if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points)]


def means(results: Results, condition: str) -> pd.DataFrame:
    """Rows (dataset, method): mean clean accuracy and mean of each cost over seeds."""
    acc = of_condition(values(results), condition)
    parts = [acc[acc["family"] == "clean"].assign(metric="accuracy")]
    parts += [of_condition(values(results, metric, split="run"), condition) for metric in COSTS.values()]
    rows = pd.concat(parts)[["dataset", "method", "metric", "value"]].astype({"dataset": str, "method": str,
                                                                            "metric": str})
    return rows.groupby(["dataset", "method", "metric"])["value"].mean().unstack("metric")


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    table = means(results, condition)
    if "accuracy" not in table:
        raise NoData("no finished run")
    datasets = table.index.unique("dataset")
    fig, axes = grid(len(datasets) * len(COSTS), ncols=len(COSTS))
    for k, dataset in enumerate(datasets):
        part = table.loc[dataset]
        for j, (label, metric) in enumerate(COSTS.items()):
            ax = axes[k * len(COSTS) + j]
            cost = part[metric] if metric in part else pd.Series(np.nan, index=part.index)
            measured = part.index[np.isfinite(cost) & np.isfinite(part["accuracy"])]
            pts = [(float(cost[m]), float(part.loc[m, "accuracy"])) for m in measured]
            for method, (c, a) in zip(measured, pts, strict=True):
                style = method_style(method)
                ax.scatter([c], [a], color=style["color"], marker=style["marker"], label=method, zorder=3)
            front = sorted((pts[i] for i in pareto(pts)), key=lambda p: p[0])
            ax.plot([p[0] for p in front], [p[1] for p in front], color="grey", linestyle=":", label="Pareto front")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # major decades only: minor labels overlap
            ax.set_xlabel(label)
            ax.set_ylabel("clean accuracy")
            ax.set_title(f"{dataset} ({condition_title(condition)})")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_04_pareto")
