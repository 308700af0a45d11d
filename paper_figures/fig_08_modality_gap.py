"""Modality gap (GMM-guided loss): the histogram of the training gaps at the end of training with the
fitted two-component mixture (balanced and imbalanced components), one panel per dataset (seed 0, or
the lowest seed run), drawn per training condition; the legend is below the panels, off the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm

from benchmark.figure_style import grid, legend_below, save
from benchmark.figures import NoData, condition_title, main_condition, records_by
from benchmark.results import Results

PER_CONDITION = True
METHOD = "gmm_adaptive"
FIT_KEYS = ("pi_b", "mu_b", "var_b", "pi_i", "mu_i", "var_i")


def mixture_density(fit: dict, g: np.ndarray, logit_scale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Density of each component on the histogram's axis (changing variables when the mixture was fitted
    on the logit of the gap)."""
    t, jac = g, np.ones_like(g)
    if logit_scale:
        gc = np.clip(g, 1e-4, 1 - 1e-4)
        t, jac = np.log(gc / (1 - gc)), 1.0 / (gc * (1 - gc))
    comp_b = fit["pi_b"] * norm.pdf(t, fit["mu_b"], np.sqrt(fit["var_b"])) * jac
    comp_i = fit["pi_i"] * norm.pdf(t, fit["mu_i"], np.sqrt(fit["var_i"])) * jac
    return comp_b, comp_i


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    panels = {k: with_hist[0] for k, recs in records_by(results, condition, METHOD).items()
              if (with_hist := [r for r in recs if "histogram" in (r.body.get("extras") or {})])}
    if not panels:
        raise NoData(f"no run of {METHOD} carries a gap histogram")
    fig, axes = grid(len(panels), ncols=2, panel_height=2.0)
    for ax, ((dataset, label), r) in zip(axes, panels.items(), strict=True):
        extras = r.body["extras"]
        hist, fit = extras["histogram"], extras.get("final_fit") or {}
        edges, counts = np.array(hist["edges"]), np.array(hist["counts"], dtype=float)
        widths = np.diff(edges)
        density = counts / max(counts.sum(), 1) / widths
        ax.bar(edges[:-1], density, width=widths, align="edge", color="#BBBBBB", edgecolor="#555555",
               label="training gaps")
        if all(k in fit for k in FIT_KEYS):
            g = np.linspace(edges[0], edges[-1], 400)
            comp_b, comp_i = mixture_density(fit, g, "logit" in str(extras.get("gap_form", "")))
            ax.plot(g, comp_b, color="#0072B2", linestyle="-", label="balanced component")
            ax.plot(g, comp_i, color="#D55E00", linestyle="--", label="imbalanced component")
            if fit.get("fallback"):
                ax.set_title("one component fits better (BIC): uniform weights", loc="right", fontsize=6,
                             pad=10)
        ax.set_xlabel(f"modality gap ({hist.get('of', 'gap')})")
        ax.set_ylabel("density")
        name = dataset if label == METHOD else f"{dataset}, {label}"
        ax.set_title(f"{name} (seed {r.spec.seed})", loc="left")
    legend_below(fig, axes)
    fig.suptitle(f"Modality gaps at the end of training ({condition_title(condition)})")
    return save(fig, out_dir, "fig_08_modality_gap")
