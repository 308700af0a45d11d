"""Robustness curves: accuracy against severity or missing rate, per dataset and protocol family, one
line per method with a 95% band over seeds. A family's curve averages its protocols' curves (e.g.
Gaussian noise on each modality) at each severity; severity 0 is the clean test set."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import NoData, band, by, ok_records
from benchmark.robustness import curves

XLABELS = {"missing": "missing rate", "mnar": "missing rate (not at random)", "noise": "noise level",
           "covariate": "shift level", "label": "label-shift strength λ"}


def family_curves(record: dict) -> dict[str, dict[float, float]]:
    acc: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (family, _), (sev, values) in curves(record).items():
        for s, a in zip(sev, values, strict=True):
            acc[family][float(s)].append(float(a))
    return {f: {s: float(np.mean(v)) for s, v in pts.items()} for f, pts in acc.items()}


def draw(records: list[dict], out_dir) -> list:
    panels: dict[tuple[str, str], dict[str, list[dict[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for (dataset, method), recs in by(ok_records(records), "dataset", "method").items():
        for r in recs:
            for family, pts in family_curves(r).items():
                panels[(dataset, family)][method].append(pts)
    if not panels:
        raise NoData("no run has a graded condition (random_missing, gaussian_noise, ...)")
    fig, axes = grid(len(panels))
    for ax, ((dataset, family), methods) in zip(axes, sorted(panels.items()), strict=True):
        for method, seeds in sorted(methods.items()):
            sev = sorted(set.intersection(*(set(s) for s in seeds)))
            mean, lo, hi = band([[s[x] for x in sev] for s in seeds])
            style = method_style(method)
            ax.plot(sev, mean, label=method, markersize=3, **style)
            ax.fill_between(sev, np.clip(lo, 0, 1), np.clip(hi, 0, 1), color=style["color"], alpha=0.15, linewidth=0)
        ax.set_title(f"{dataset}: {family}")
        ax.set_xlabel(XLABELS.get(family, "severity"))
        ax.set_ylabel("accuracy")
    axes[0].legend(loc="lower left")
    return save(fig, out_dir, "fig_01_robustness_curves")
