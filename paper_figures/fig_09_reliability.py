"""Calibration: per dataset, the reliability diagram on the clean test set (accuracy against confidence,
15 equal-width bins pooled over seeds, one line per method) and the expected calibration error (%) of
every method on one common shift, the dataset's hardest for the methods on average (the shift condition
of the noise, covariate and correlation families with the lowest mean accuracy over methods and seeds),
mean and 95% interval over seeds; drawn per training condition. Each method is compared on the same
shifted inputs, not on its own worst shift."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.figure_style import grid, legend_below, method_style, save
from benchmark.figures import NoData, condition_title, main_condition, mean_band, of_condition, records_by, values
from benchmark.records import RunRecord
from benchmark.results import Results

PER_CONDITION = True
SHIFT_FAMILIES = ("noise", "covariate", "correlation")


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


def common_shift(results: Results, condition: str, dataset: str) -> str | None:
    """The dataset's shift condition with the lowest accuracy averaged over every method and seed (ties:
    the first key in sorted order); None without a shift condition."""
    acc = of_condition(values(results), condition)
    acc = acc[(acc["dataset"] == dataset) & acc["family"].isin(SHIFT_FAMILIES)]
    if acc.empty:
        return None
    means = acc.astype({"condition": str}).groupby("condition")["value"].mean().sort_index()
    return str(means.idxmin())


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    datasets: dict[str, dict[str, list[RunRecord]]] = {}
    for (dataset, method), recs in records_by(results, condition).items():
        if any(r.body.get("reliability") for r in recs):
            datasets.setdefault(dataset, {})[method] = recs
    if not datasets:
        raise NoData("no record carries reliability bins")
    ece = of_condition(values(results, "ece"), condition).astype({"dataset": str, "method": str, "condition": str})
    fig, axes = grid(len(datasets) * 2, ncols=2, panel_height=1.9)
    for k, (dataset, methods) in enumerate(datasets.items()):
        ax = axes[2 * k]
        ax.plot([0, 100], [0, 100], color="grey", linewidth=0.8, linestyle=":", label="calibrated")
        for method, recs in methods.items():
            curve = pooled(recs, "clean")
            if curve is not None:
                ax.plot(curve[0] * 100, curve[1] * 100, label=method, markersize=3, **method_style(method))
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("confidence (%)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{dataset}: clean test set")
        ax = axes[2 * k + 1]
        shift = common_shift(results, condition, dataset)
        if shift is None:
            ax.set_visible(False)
            continue
        part = ece[(ece["dataset"] == dataset) & (ece["condition"] == shift)]
        names = sorted(methods)
        for i, method in enumerate(names):
            seeds = part.loc[part["method"] == method, "value"].to_numpy(float) * 100
            if not len(seeds):
                continue
            m, lo, hi = mean_band(seeds)
            st = method_style(method)
            ax.errorbar([m], [i], xerr=[[m - lo], [hi - m]], color=st["color"], marker=st["marker"],
                        markerfacecolor=st.get("markerfacecolor", st["color"]), capsize=2, linestyle="none")
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("expected calibration error (%)")
        ax.set_title(f"{dataset}: common shift {shift}", fontsize=7)
    legend_below(fig, axes[0::2])
    fig.suptitle(f"Calibration on the clean test set and on one common shift ({condition_title(condition)})")
    return save(fig, out_dir, "fig_09_reliability")
