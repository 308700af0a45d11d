"""Conformal Shapley: per dataset, the marginal split-conformal interval of each modality's Shapley value
with its mean (a forest plot, mean endpoints over seeds, of the method's default rule), and test accuracy
(%) against the number of selected modalities q (the selection path, scored by the runner on the clean
test split, mean and 95% band over seeds, one line per rule), drawn per training condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.figure_style import grid, integer_ticks, legend_below, method_style, save
from benchmark.figures import NoData, band, condition_title, main_condition, records_by
from benchmark.results import Results

PER_CONDITION = True
METHOD = "conformal_shapley"


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    panels = records_by(results, condition, METHOD)
    if not panels:
        raise NoData(f"no finished run of {METHOD}")
    datasets = sorted({d for d, _ in panels})
    fig, axes = grid(2 * len(datasets), ncols=2, panel_height=1.6)
    for k, dataset in enumerate(datasets):
        labels = sorted((lab for d, lab in panels if d == dataset), key=lambda lab: (lab != METHOD, lab))
        recs = panels[(dataset, labels[0])]
        style = method_style(labels[0])
        extras = [r.body["extras"] for r in recs]
        ax = axes[2 * k]
        intervals = np.array([[[np.nan if v is None else v for v in iv] for iv in e["marginal_intervals"]]
                              for e in extras], dtype=float)
        means = np.array([e["mean_shapley"] for e in extras], dtype=float)
        with np.errstate(all="ignore"):
            lo, hi = np.nanmean(intervals[:, :, 0], axis=0), np.nanmean(intervals[:, :, 1], axis=0)
        y = np.arange(len(extras[0]["modalities"]))
        ax.hlines(y, lo, hi, color=style["color"], linewidth=2, label="95% marginal interval")
        ax.plot(means.mean(axis=0), y, "o", color=style["color"], label="mean Shapley value")
        ax.axvline(0, color="grey", linestyle=":", linewidth=0.8)
        ax.set_yticks(y, extras[0]["modalities"])
        ax.set_xlabel("Shapley value (log-loss reduction)")
        ax.set_title(f"{dataset}: importance ({labels[0]})")
        ax = axes[2 * k + 1]
        for label in labels:
            paths = [p for r in panels[(dataset, label)]
                     if (p := (r.body.get("extras_test") or {}).get("selection_path"))]
            if paths:
                qs = paths[0]["columns"]
                mean, low, high = band(np.array([p["accuracy"] for p in paths if p["columns"] == qs]) * 100)
                st = method_style(label)
                ax.plot(qs, mean, label=label, **st)
                ax.fill_between(qs, low, high, color=st["color"], alpha=0.15, linewidth=0)
        integer_ticks(ax)
        ax.set_xlabel("modalities selected at most (q)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset}: selection path")
    legend_below(fig, axes)
    fig.suptitle(f"Conformal Shapley ({condition_title(condition)})")
    return save(fig, out_dir, "fig_07_conformal_shapley")
