"""Robustness curves: accuracy (%) against severity or missing rate, one figure per protocol family
(``fig_01_robustness_curves_FAMILY``) with one panel per dataset and one line per method with its 95%
band over seeds; drawn per training condition. A family's curve averages its curves (e.g. Gaussian
noise on each modality) at each severity; severity 0 is the clean test set. One figure per family keeps
each within a page (all families at once were 35 panels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.figure_style import grid, legend_below, method_style, save
from benchmark.figures import NoData, band, condition_title, main_condition, of_condition, values
from benchmark.results import Results

PER_CONDITION = True
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
    paths = []
    for family in sorted(curves.index.unique("family")):
        part_f = curves.xs(family, level="family")
        datasets = list(part_f.index.unique("dataset"))
        fig, axes = grid(len(datasets), ncols=2, panel_height=2.0)
        for ax, dataset in zip(axes, datasets, strict=True):
            part = part_f.loc[dataset]
            for method in part.index.unique("method"):
                seeds = part.loc[method].dropna(axis=1)  # the severities every seed has
                sev = seeds.columns.to_numpy(dtype=float)
                mean, lo, hi = band(seeds.to_numpy() * 100)
                style = method_style(method)
                ax.plot(sev, mean, label=method, **style)
                ax.fill_between(sev, np.clip(lo, 0, 100), np.clip(hi, 0, 100), color=style["color"], alpha=0.15,
                                linewidth=0)
            ax.set_title(f"{dataset}: {family}")
            ax.set_xlabel(XLABELS.get(family, "severity"))
            ax.set_ylabel("accuracy (%)")
        legend_below(fig, axes)
        fig.suptitle(f"Accuracy against {family} severity, mean and 95% band over seeds ({condition_title(condition)})")
        paths += save(fig, out_dir, f"fig_01_robustness_curves_{family}")
    return paths
