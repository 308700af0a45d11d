"""Clean accuracy (%) against a training cost, one figure per cost (``fig_04_pareto_time``,
``fig_04_pareto_flops``) with one panel per dataset: a point per method at its mean over seeds with 95%
intervals on both axes, and the Pareto front (no other method both cheaper and more accurate); drawn per
training condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from benchmark.figure_style import grid, legend_below, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, condition_title, main_condition, mean_band, of_condition, values
from benchmark.report.markdown import si
from benchmark.results import Results

PER_CONDITION = True
FILES = {"fit_seconds": "time", "train_flops": "flops"}


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points that no other point beats on both cost (lower) and accuracy (higher)."""
    return [i for i, (c, a) in enumerate(points)
            if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points)]


def per_seed(results: Results, condition: str) -> pd.DataFrame:
    """Rows (dataset, method, seed): clean accuracy and each cost."""
    acc = of_condition(values(results), condition)
    parts = [acc[acc["family"] == "clean"].assign(metric="accuracy")]
    parts += [of_condition(values(results, metric, split="run"), condition) for metric in COSTS.values()]
    rows = pd.concat(parts)[["dataset", "method", "seed", "metric", "value"]].astype(
        {"dataset": str, "method": str, "metric": str})
    return rows.groupby(["dataset", "method", "seed", "metric"])["value"].mean().unstack("metric")


def log_axis(ax) -> None:  # noqa: ANN001
    """A log axis labelled at 1, 2 and 5 times each power of ten, so a range inside one decade has labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    table = per_seed(results, condition)
    if "accuracy" not in table:
        raise NoData("no finished run")
    datasets = list(table.index.unique("dataset"))
    paths = []
    for label, metric in COSTS.items():
        fig, axes = grid(len(datasets), ncols=2, panel_height=2.0)
        for ax, dataset in zip(axes, datasets, strict=True):
            part = table.loc[dataset]
            pts, names = [], []
            for method in part.index.unique("method"):
                seeds = part.loc[method]
                if metric not in seeds or not np.isfinite(seeds[metric]).any():
                    continue
                a, a_lo, a_hi = mean_band(seeds["accuracy"] * 100)
                c, c_lo, c_hi = mean_band(seeds[metric])
                style = method_style(method)
                ax.errorbar([c], [a], xerr=[[c - c_lo], [c_hi - c]], yerr=[[a - a_lo], [a_hi - a]],
                            color=style["color"], marker=style["marker"],
                            markerfacecolor=style.get("markerfacecolor", style["color"]), linestyle="none",
                            capsize=2, elinewidth=0.8, label=method, zorder=3)
                pts.append((c, a))
                names.append(method)
            front = sorted((pts[i] for i in pareto(pts)), key=lambda p: p[0])
            ax.plot([p[0] for p in front], [p[1] for p in front], color="grey", linestyle=":", label="Pareto front")
            log_axis(ax)
            ax.set_xlabel(label)
            ax.set_ylabel("clean accuracy (%)")
            ax.set_title(dataset)
        legend_below(fig, axes)
        fig.suptitle(f"Clean accuracy against {label}, mean and 95% intervals over seeds "
                     f"({condition_title(condition)})")
        paths += save(fig, out_dir, f"fig_04_pareto_{FILES.get(metric, metric)}")
    return paths
