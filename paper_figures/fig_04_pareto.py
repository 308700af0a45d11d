"""Accuracy against training time and against training FLOPs, per dataset, one point per method (mean
over seeds), with the Pareto front (no other method both cheaper and more accurate) marked."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, by, ok_records


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points that no other point beats on both cost (lower) and accuracy (higher)."""
    return [i for i, (c, a) in enumerate(points)
            if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points)]


def draw(records: list[dict], out_dir) -> list:
    datasets = by(ok_records(records), "dataset")
    if not datasets:
        raise NoData("no finished run")
    fig, axes = grid(len(datasets) * len(COSTS), ncols=len(COSTS))
    for k, ((dataset,), recs) in enumerate(datasets.items()):
        for j, (label, cost) in enumerate(COSTS.items()):
            ax = axes[k * len(COSTS) + j]
            methods = by(recs, "method")
            pts = [(float(np.mean([cost(r) for r in rs])), float(np.mean([r["metrics"]["clean"]["accuracy"]
                                                                         for r in rs]))) for rs in methods.values()]
            for ((method,), _), (c, a) in zip(methods.items(), pts, strict=True):
                style = method_style(method)
                ax.scatter([c], [a], color=style["color"], marker=style["marker"], label=method, zorder=3)
            front = sorted((pts[i] for i in pareto(pts)), key=lambda p: p[0])
            ax.plot([p[0] for p in front], [p[1] for p in front], color="grey", linestyle=":", label="Pareto front")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # major decades only: minor labels overlap
            ax.set_xlabel(label)
            ax.set_ylabel("clean accuracy")
            ax.set_title(dataset)
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_04_pareto")
