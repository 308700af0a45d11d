"""Conformal Shapley: per dataset, the marginal split-conformal interval of each modality's Shapley value
with its mean (a forest plot, mean endpoints over seeds), and test accuracy against the number of
selected modalities q (the selection path, scored by the runner on the clean test split)."""

from __future__ import annotations

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, band, by, ok_records

METHOD = "conformal_shapley"


def draw(records: list[dict], out_dir) -> list:
    datasets = by(ok_records(records, METHOD), "dataset")
    if not datasets:
        raise NoData(f"no finished run of {METHOD}")
    style = method_style(METHOD)
    fig, axes = grid(2 * len(datasets), ncols=2)
    for k, ((dataset,), recs) in enumerate(datasets.items()):
        ax = axes[2 * k]
        names = recs[0]["extras"]["modalities"]
        intervals = np.array([[[np.nan if v is None else v for v in iv] for iv in r["extras"]["marginal_intervals"]]
                              for r in recs], dtype=float)
        means = np.array([r["extras"]["mean_shapley"] for r in recs], dtype=float)
        lo, hi = np.nanmean(intervals[:, :, 0], axis=0), np.nanmean(intervals[:, :, 1], axis=0)
        y = np.arange(len(names))
        ax.hlines(y, lo, hi, color=style["color"], linewidth=2, label="95% marginal interval")
        ax.plot(means.mean(axis=0), y, "o", color=style["color"], label="mean Shapley value")
        ax.axvline(0, color="grey", linestyle=":", linewidth=0.8)
        ax.set_yticks(y, names)
        ax.set_xlabel("pointwise Shapley value (log-loss reduction)")
        ax.set_ylabel("modality")
        ax.set_title(f"{dataset}: modality importance")
        ax = axes[2 * k + 1]
        paths = [r.get("extras_test", {}).get("selection_path") for r in recs]
        paths = [p for p in paths if p]
        if paths:
            qs = paths[0]["columns"]
            mean, low, high = band([p["accuracy"] for p in paths if p["columns"] == qs])
            ax.plot(qs, mean, label=METHOD, **style)
            ax.fill_between(qs, low, high, color=style["color"], alpha=0.15, linewidth=0)
        ax.set_xlabel("modalities selected at most (q)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{dataset}: selection path")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_07_conformal_shapley")
