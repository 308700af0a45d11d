"""Spread across seeds: box plots of clean accuracy per method, one panel per training condition and
dataset (the median and the variance the DRO paper makes claims about); training conditions are never
pooled as seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, condition_title, training_conditions, values
from benchmark.results import Results


def draw(results: Results, out_dir: Path) -> list[Path]:
    acc = values(results)
    acc = acc[acc["family"] == "clean"][["train_condition", "dataset", "method", "seed", "value"]]
    acc = acc.astype({"train_condition": str, "dataset": str, "method": str})
    if acc.empty:
        raise NoData("no finished run")
    ncols = min(acc["dataset"].nunique(), 4)
    panels: list[tuple[str, str, pd.DataFrame] | None] = []
    for cond in training_conditions(acc):  # each training condition starts a row
        panels += [(cond, dataset, part) for dataset, part in acc[acc["train_condition"] == cond].groupby("dataset")]
        panels += [None] * (-len(panels) % ncols)
    fig, axes = grid(len(panels), ncols=ncols)
    for ax, panel in zip(axes, panels, strict=True):
        if panel is None:
            ax.set_visible(False)
            continue
        cond, dataset, part = panel
        methods = part.groupby("method")["value"]
        names = list(methods.groups)
        box = ax.boxplot([methods.get_group(m).to_numpy() for m in names], patch_artist=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(method_style(name)["color"])
            patch.set_alpha(0.5)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_title(f"{dataset} ({condition_title(cond)})")
        ax.set_ylabel("clean accuracy over seeds")
    return save(fig, out_dir, "fig_05_seed_spread")
