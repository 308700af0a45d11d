"""Complexity scaling: training time and training FLOPs against the number of modalities (runs of
``synthetic_pid`` at several ``n_modalities``: the ``scaling`` suite, run with
``python -m benchmark run --suite scaling --results results/scaling``), one line per method (mean over
seeds of each dataset variant): modality-aware methods against early fusion. Drawn for the ``standard``
training condition (the title names the one drawn)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, condition_title, main_condition, of_condition, values
from benchmark.results import Results

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
    mean = cost.groupby(["metric", "method", "n_modalities", "dataset"])["value"].mean()
    fig, axes = grid(len(COSTS), ncols=len(COSTS))
    for ax, (label, metric) in zip(axes, COSTS.items(), strict=True):
        for method, line in mean[mean.index.get_level_values("metric") == metric].groupby("method"):
            line = line.droplevel(["metric", "method"])
            ax.plot(line.index.get_level_values("n_modalities"), line.to_numpy(), label=method, markersize=4,
                    **method_style(method))
        ax.set_xlabel("number of modalities")
        ax.set_ylabel(label)
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Training cost against the number of modalities ({condition_title(condition)})")
    return save(fig, out_dir, "fig_06_complexity_scaling")
