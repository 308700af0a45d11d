"""Complexity scaling: training time and training FLOPs against the number of modalities (runs of
``synthetic_pid`` at several ``n_modalities``: the ``scaling`` suite, run with
``python -m benchmark run --suite scaling --results results/scaling``), one line per method (mean and
95% interval over seeds of each dataset variant): modality-aware methods against early fusion; drawn per
training condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.figure_style import grid, integer_ticks, legend_below, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, condition_title, main_condition, mean_band, of_condition, values
from benchmark.results import Results

PER_CONDITION = True
#: Drawn from the results of the scaling suite (``results/scaling``), not the suite of the other figures.
SUITE = "scaling"
DATASET = "synthetic_pid"
DEFAULT_MODALITIES = 3  # synthetic_pid's n_modalities when a suite does not set it


def n_modalities(results: Results) -> dict[str, int]:
    """Dataset label -> its number of modalities, for the runs of ``DATASET``."""
    return {r.dataset: int(r.spec.dataset_params.get("n_modalities", DEFAULT_MODALITIES))
            for r in results.ok if r.spec.dataset == DATASET}


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    modalities = n_modalities(results)
    if len(set(modalities.values())) < 2:
        raise NoData(f"needs {DATASET} runs at two or more n_modalities "
                     "(python -m benchmark run --suite scaling --results results/scaling)")
    cost = pd.concat([of_condition(values(results, metric, split="run"), condition) for metric in COSTS.values()])
    cost = cost[cost["dataset_name"] == DATASET][["dataset", "method", "metric", "value"]]
    cost = cost.astype({"dataset": str, "method": str, "metric": str, "value": float})
    cost["n_modalities"] = cost["dataset"].map(modalities)
    fig, axes = grid(len(COSTS), ncols=len(COSTS), panel_height=2.6)
    for ax, (label, metric) in zip(axes, COSTS.items(), strict=True):
        part = cost[cost["metric"] == metric]
        for method, line in part.groupby("method"):
            ks = sorted(set(line["n_modalities"]))
            stats = np.array([mean_band(line.loc[line["n_modalities"] == k, "value"]) for k in ks])
            style = method_style(method)
            ax.plot(ks, stats[:, 0], label=method, **style)
            ax.fill_between(ks, stats[:, 1], stats[:, 2], color=style["color"], alpha=0.15, linewidth=0)
        ax.set_xlabel("number of modalities")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        integer_ticks(ax)
    legend_below(fig, axes)
    fig.suptitle(f"Training cost against the number of modalities, mean and 95% band over seeds "
                 f"({condition_title(condition)})")
    return save(fig, out_dir, "fig_06_complexity_scaling")
