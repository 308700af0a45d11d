"""Complexity scaling: training time and training FLOPs against the number of modalities (runs of
``synthetic_pid`` at several ``n_modalities``: the ``scaling`` suite, run with
``python -m benchmark run --suite scaling --results results/scaling``), one line per method:
modality-aware methods against early fusion."""

from __future__ import annotations

import numpy as np

from benchmark.figure_style import grid, method_style, save
from benchmark.figures import TRAINING_COSTS as COSTS
from benchmark.figures import NoData, by, ok_records

#: Drawn from the records of the scaling suite (``results/scaling``), not the suite of the other figures.
SUITE = "scaling"


def draw(records: list[dict], out_dir) -> list:
    recs = [r for r in ok_records(records) if r["spec"]["dataset"] == "synthetic_pid"]
    ms = sorted({int(r["spec"]["dataset_params"].get("n_modalities", 3)) for r in recs})
    if len(ms) < 2:
        raise NoData("needs synthetic_pid runs at two or more n_modalities "
                     "(python -m benchmark run --suite scaling --results results/scaling)")
    fig, axes = grid(len(COSTS), ncols=len(COSTS))
    for ax, (label, cost) in zip(axes, COSTS.items(), strict=True):
        for (method,), rs in by(recs, "method").items():
            xs, ys = [], []
            for m in ms:
                vals = [cost(r) for r in rs if int(r["spec"]["dataset_params"].get("n_modalities", 3)) == m]
                if vals:
                    xs.append(m)
                    ys.append(float(np.mean(vals)))
            ax.plot(xs, ys, label=method, markersize=4, **method_style(method))
        ax.set_xlabel("number of modalities")
        ax.set_ylabel(label)
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_06_complexity_scaling")
