"""Missing-pattern heat map: accuracy (mean over seeds) of each method for each subset of modalities
present, one panel per dataset."""

from __future__ import annotations

import numpy as np

from benchmark.figure_style import grid, save
from benchmark.figures import NoData, by, ok_records


def draw(records: list[dict], out_dir) -> list:
    panels = {}
    for (dataset,), recs in by(ok_records(records), "dataset").items():
        patterns = sorted({k for r in recs for k in r["metrics"] if k.startswith("missing_pattern[")},
                          key=lambda k: (k.count("+"), k))
        if not patterns:
            continue
        methods = sorted({r["spec"]["method"] for r in recs})
        matrix = np.full((len(methods), len(patterns)), np.nan)
        for i, m in enumerate(methods):
            for j, p in enumerate(patterns):
                vals = [r["metrics"][p]["accuracy"] for r in recs if r["spec"]["method"] == m and p in r["metrics"]]
                matrix[i, j] = np.mean(vals) if vals else np.nan
        panels[dataset] = (methods, [p[len("missing_pattern["):-1] for p in patterns], matrix)
    if not panels:
        raise NoData("no run was evaluated under missing_pattern[*]")
    fig, axes = grid(len(panels), ncols=1, size=(11, 2.8))
    for ax, (dataset, (methods, patterns, matrix)) in zip(axes, panels.items(), strict=True):
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_xticks(range(len(patterns)), patterns, rotation=90, fontsize=5 if len(patterns) > 20 else 8)
        ax.set_title(f"{dataset}: accuracy with only these modalities present")
        ax.set_xlabel("modalities present")
        ax.set_ylabel("method")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="accuracy")
    return save(fig, out_dir, "fig_02_missing_patterns")
