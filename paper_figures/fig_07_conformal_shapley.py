"""Conformal Shapley: per dataset, the marginal split-conformal interval of each modality's Shapley value
with its mean (a forest plot, mean endpoints over seeds), and test accuracy against the number of
selected modalities q (the selection path, scored by the runner on the clean test split), for the
``standard`` training condition (the title names the one drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, band, condition_title, main_condition, records_by
from benchmark.results import Results

METHOD = "conformal_shapley"


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    panels = records_by(results, condition, METHOD)
    if not panels:
        raise NoData(f"no finished run of {METHOD}")
    fig, axes = grid(2 * len(panels), ncols=2)
    for k, ((dataset, label), recs) in enumerate(panels.items()):
        style, title = method_style(label), dataset if label == METHOD else f"{dataset}, {label}"
        extras = [r.body["extras"] for r in recs]
        ax = axes[2 * k]
        intervals = np.array([[[np.nan if v is None else v for v in iv] for iv in e["marginal_intervals"]]
                              for e in extras], dtype=float)
        means = np.array([e["mean_shapley"] for e in extras], dtype=float)
        lo, hi = np.nanmean(intervals[:, :, 0], axis=0), np.nanmean(intervals[:, :, 1], axis=0)
        y = np.arange(len(extras[0]["modalities"]))
        ax.hlines(y, lo, hi, color=style["color"], linewidth=2, label="95% marginal interval")
        ax.plot(means.mean(axis=0), y, "o", color=style["color"], label="mean Shapley value")
        ax.axvline(0, color="grey", linestyle=":", linewidth=0.8)
        ax.set_yticks(y, extras[0]["modalities"])
        ax.set_xlabel("pointwise Shapley value (log-loss reduction)")
        ax.set_ylabel("modality")
        ax.set_title(f"{title}: modality importance ({condition_title(condition)})")
        ax = axes[2 * k + 1]
        paths = [p for r in recs if (p := (r.body.get("extras_test") or {}).get("selection_path"))]
        if paths:
            qs = paths[0]["columns"]
            mean, low, high = band([p["accuracy"] for p in paths if p["columns"] == qs])
            ax.plot(qs, mean, label=label, **style)
            ax.fill_between(qs, low, high, color=style["color"], alpha=0.15, linewidth=0)
        ax.set_xlabel("modalities selected at most (q)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{title}: selection path")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_07_conformal_shapley")
