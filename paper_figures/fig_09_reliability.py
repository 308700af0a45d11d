"""Reliability diagrams: accuracy against confidence (15 equal-width bins, pooled over seeds), on the
clean test set and under each run's strongest shift (its least accurate noise, covariate or correlation
condition), one panel per dataset and setting, one line per method, for the ``standard`` training
condition (the title names the one drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, condition_title, main_condition, records_by
from benchmark.records import RunRecord
from benchmark.results import Results

SETTINGS = {"clean": "clean test set", "strongest_shift": "strongest shift"}


def pooled(recs: list[RunRecord], setting: str) -> tuple[np.ndarray, np.ndarray] | None:
    bins = [rel[setting] for r in recs if setting in (rel := r.body.get("reliability") or {})]
    if not bins:
        return None
    count = np.array([b["count"] for b in bins], dtype=float)
    conf = np.nan_to_num(np.array([b["confidence"] for b in bins], dtype=float))
    acc = np.nan_to_num(np.array([b["accuracy"] for b in bins], dtype=float))
    total = count.sum(axis=0)
    keep = total > 0
    return (conf * count).sum(0)[keep] / total[keep], (acc * count).sum(0)[keep] / total[keep]


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    datasets: dict[str, dict[str, list[RunRecord]]] = {}
    for (dataset, method), recs in records_by(results, condition).items():
        if any(r.body.get("reliability") for r in recs):
            datasets.setdefault(dataset, {})[method] = recs
    if not datasets:
        raise NoData("no record carries reliability bins")
    fig, axes = grid(len(datasets) * len(SETTINGS), ncols=len(SETTINGS))
    for k, (dataset, methods) in enumerate(datasets.items()):
        for j, (setting, title) in enumerate(SETTINGS.items()):
            ax = axes[k * len(SETTINGS) + j]
            ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="calibrated")
            for method, recs in methods.items():
                curve = pooled(recs, setting)
                if curve is not None:
                    ax.plot(*curve, label=method, markersize=3, **method_style(method))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
            ax.set_title(f"{dataset}: {title} ({condition_title(condition)})")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_09_reliability")
