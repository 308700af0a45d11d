"""Reliability diagrams: accuracy against confidence (15 equal-width bins, pooled over seeds), on the
clean test set and under each run's strongest shift (its least accurate noise, covariate or correlation
condition), one panel per dataset and setting, one line per method."""

from __future__ import annotations

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, by, ok_records

SETTINGS = {"clean": "clean test set", "strongest_shift": "strongest shift"}


def pooled(recs: list[dict], setting: str) -> tuple[np.ndarray, np.ndarray] | None:
    bins = [r["reliability"][setting] for r in recs if setting in r.get("reliability", {})]
    if not bins:
        return None
    count = np.array([b["count"] for b in bins], dtype=float)
    conf = np.nan_to_num(np.array([b["confidence"] for b in bins], dtype=float))
    acc = np.nan_to_num(np.array([b["accuracy"] for b in bins], dtype=float))
    total = count.sum(axis=0)
    keep = total > 0
    return (conf * count).sum(0)[keep] / total[keep], (acc * count).sum(0)[keep] / total[keep]


def draw(records: list[dict], out_dir) -> list:
    datasets = {k: v for k, v in by(ok_records(records), "dataset").items()
                if any(r.get("reliability") for r in v)}
    if not datasets:
        raise NoData("no record carries reliability bins")
    fig, axes = grid(len(datasets) * len(SETTINGS), ncols=len(SETTINGS))
    for k, ((dataset,), recs) in enumerate(datasets.items()):
        for j, (setting, title) in enumerate(SETTINGS.items()):
            ax = axes[k * len(SETTINGS) + j]
            ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="calibrated")
            for (method,), rs in by(recs, "method").items():
                curve = pooled(rs, setting)
                if curve is not None:
                    ax.plot(*curve, label=method, markersize=3, **method_style(method))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
            ax.set_title(f"{dataset}: {title}")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_09_reliability")
