"""Robustness curves: accuracy against severity or missing rate, per dataset and protocol family, one
line per method with a 95% band over seeds, for the ``standard`` training condition (the title names the
one drawn). A family's curve averages its curves (e.g. Gaussian noise on each modality) at each
severity; severity 0 is the clean test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, band, condition_title, main_condition, of_condition, values
from benchmark.results import Results

XLABELS = {"missing": "missing rate", "mnar": "missing rate (not at random)", "noise": "noise level",
           "covariate": "shift level", "label": "label-shift strength λ"}
KEYS = ["dataset", "family", "method", "seed"]


def family_curves(acc: pd.DataFrame) -> pd.DataFrame:
    """Rows (dataset, family, method, seed), columns severity (0 = clean): the mean accuracy of the
    family's curves at each severity, per run."""
    graded = acc[acc["severity"].notna()]
    clean = acc[acc["family"] == "clean"][["run_id", "value"]]
    zero = graded.drop_duplicates(["run_id", "family"]).drop(columns="value").merge(clean, on="run_id")
    points = pd.concat([graded, zero.assign(severity=0.0)])[[*KEYS, "severity", "value"]]
    points[KEYS[:3]] = points[KEYS[:3]].astype(str)
    return points.groupby([*KEYS, "severity"])["value"].mean().unstack("severity")


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    curves = family_curves(of_condition(values(results), condition))
    if curves.empty:
        raise NoData("no run has a graded condition (random_missing, gaussian_noise, ...)")
    panels = curves.index.droplevel(["method", "seed"]).unique()
    fig, axes = grid(len(panels))
    for ax, (dataset, family) in zip(axes, panels, strict=True):
        part = curves.loc[(dataset, family)]
        for method in part.index.unique("method"):
            seeds = part.loc[method].dropna(axis=1)  # the severities every seed has
            sev = seeds.columns.to_numpy(dtype=float)
            mean, lo, hi = band(seeds.to_numpy())
            style = method_style(method)
            ax.plot(sev, mean, label=method, markersize=3, **style)
            ax.fill_between(sev, np.clip(lo, 0, 1), np.clip(hi, 0, 1), color=style["color"], alpha=0.15, linewidth=0)
        ax.set_title(f"{dataset}: {family}")
        ax.set_xlabel(XLABELS.get(family, "severity"))
        ax.set_ylabel("accuracy")
    axes[0].legend(loc="lower left")
    fig.suptitle(f"Accuracy against severity, mean and 95% band over seeds ({condition_title(condition)})")
    return save(fig, out_dir, "fig_01_robustness_curves")
