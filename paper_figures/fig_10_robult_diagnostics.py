"""Robult's diagnostics over training: the mean per-dimension spread of each modality's unique features
U (a collapse shows as a fall to 0) and the cosine of the fusion branch S with each redundant feature Z,
per dataset (one line per modality; the lowest seed), for the ``standard`` training condition (the title
names the one drawn)."""

from __future__ import annotations

from pathlib import Path

from benchmark.figure_style import LINESTYLES, PALETTE, grid, save
from benchmark.figures import NoData, condition_title, main_condition, records_by
from benchmark.results import Results

METHOD = "robult"
PANELS = {"u_std_mean": "spread of U (mean std per dimension)", "cos_s_z": "cos(S, Z_i)"}


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    runs = {k: with_log[0] for k, recs in records_by(results, condition, METHOD).items()
            if (with_log := [r for r in recs if "per_epoch" in (r.body.get("extras") or {})])}
    if not runs:
        raise NoData(f"no run of {METHOD} carries per-epoch diagnostics")
    fig, axes = grid(len(runs) * len(PANELS), ncols=len(PANELS))
    for k, ((dataset, label), r) in enumerate(runs.items()):
        per_epoch, names = r.body["extras"]["per_epoch"], r.body["extras"]["modalities"]
        name = dataset if label == METHOD else f"{dataset}, {label}"
        for j, (key, ylabel) in enumerate(PANELS.items()):
            ax = axes[k * len(PANELS) + j]
            series = per_epoch[key]  # epochs x modalities
            epochs = list(range(len(series)))
            for m, modality in enumerate(names):
                ax.plot(epochs, [row[m] for row in series], color=PALETTE[(m + 1) % len(PALETTE)],
                        linestyle=LINESTYLES[m % len(LINESTYLES)], label=modality)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{name} (seed {r.spec.seed}, {condition_title(condition)})")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_10_robult_diagnostics")
