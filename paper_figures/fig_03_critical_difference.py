"""Critical difference diagram across datasets (clean accuracy): average ranks, with the methods that
Nemenyi's post-hoc test cannot tell apart joined by a bar (scikit-posthocs)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import scikit_posthocs as sp

from benchmark.figure_style import method_style, save
from benchmark.figures import NoData
from benchmark.statistics import friedman, long_table


def draw(records: list[dict], out_dir) -> list:
    res = friedman(long_table(records), "clean")
    if "note" in res:
        raise NoData(f"Friedman test not computed: {res['note']}")
    fig, ax = plt.subplots(figsize=(6, 2.2))
    sp.critical_difference_diagram(res["average_ranks"], res["posthoc_p"], ax=ax,
                                   color_palette={m: method_style(m)["color"] for m in res["average_ranks"]})
    ax.set_title(f"Average rank of clean accuracy over {len(res['blocks_used'])} dataset blocks "
                 f"(Friedman p = {res['p']:.3g}, CD = {res['critical_difference']:.2f})")
    ax.set_xlabel("average rank (1 = best)")
    return save(fig, out_dir, "fig_03_critical_difference")
