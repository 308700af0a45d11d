"""Spread across seeds: box plots of clean accuracy (%) per method, one panel per dataset, drawn per
training condition (the median and the variance the DRO paper makes claims about); the median is a black
line over the method's pale box, the seeds are the dots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, condition_title, main_condition, of_condition, values
from benchmark.results import Results

PER_CONDITION = True


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    acc = of_condition(values(results), condition)
    acc = acc[acc["family"] == "clean"][["dataset", "method", "seed", "value"]]
    acc = acc.astype({"dataset": str, "method": str})
    if acc.empty:
        raise NoData("no finished run")
    groups = list(acc.groupby("dataset"))
    fig, axes = grid(len(groups), ncols=2, panel_height=2.3, legend=False)
    for ax, (dataset, part) in zip(axes, groups, strict=True):
        methods = part.groupby("method")["value"]
        names = list(methods.groups)
        data = [methods.get_group(m).to_numpy() * 100 for m in names]
        box = ax.boxplot(data, patch_artist=True, medianprops={"color": "black", "linewidth": 1.5},
                         flierprops={"marker": ""})
        for k, (patch, name) in enumerate(zip(box["boxes"], names, strict=True)):
            patch.set_facecolor(method_style(name)["color"])
            patch.set_alpha(0.35)
            ax.plot(np.full(len(data[k]), k + 1.0), data[k], linestyle="none", marker=".", color="black",
                    markersize=2.5, label="_seeds")
        ax.set_xticks(range(1, len(names) + 1), names, rotation=35, ha="right", fontsize=6)
        ax.set_title(dataset)
        ax.set_ylabel("clean accuracy (%)")
    fig.suptitle(f"Clean accuracy over seeds ({condition_title(condition)})")
    return save(fig, out_dir, "fig_05_seed_spread")
