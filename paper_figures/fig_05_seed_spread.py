"""Spread across seeds: box plots of clean accuracy per method, one panel per dataset (the median and
the variance the DRO paper makes claims about)."""

from __future__ import annotations

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, by, ok_records


def draw(records: list[dict], out_dir) -> list:
    datasets = by(ok_records(records), "dataset")
    if not datasets:
        raise NoData("no finished run")
    fig, axes = grid(len(datasets))
    for ax, ((dataset,), recs) in zip(axes, datasets.items(), strict=True):
        methods = by(recs, "method")
        data = [[r["metrics"]["clean"]["accuracy"] for r in rs] for rs in methods.values()]
        names = [m for (m,) in methods]
        box = ax.boxplot(data, patch_artist=True)
        for patch, name in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(method_style(name)["color"])
            patch.set_alpha(0.5)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_title(dataset)
        ax.set_ylabel("clean accuracy over seeds")
    return save(fig, out_dir, "fig_05_seed_spread")
