"""Robult's diagnostics over training: the mean per-dimension spread of each modality's unique features
U (a collapse shows as a fall to 0) and the cosine of the fusion branch S with each redundant feature Z,
per dataset (one line per modality; the lowest seed), drawn per training condition. Each row has its own
legend of its modalities, outside the data: datasets name their modalities differently, so one legend
for all mislabelled most rows."""

from __future__ import annotations

from pathlib import Path

from benchmark.figure_style import LINESTYLES, MARKERS, PALETTE, grid, save
from benchmark.figures import NoData, condition_title, main_condition, records_by
from benchmark.results import Results

PER_CONDITION = True
METHOD = "robult"
PANELS = {"u_std_mean": "spread of U (mean std per dimension)", "cos_s_z": "cos(S, Z_i)"}


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    runs = {k: with_log[0] for k, recs in records_by(results, condition, METHOD).items()
            if (with_log := [r for r in recs if "per_epoch" in (r.body.get("extras") or {})])}
    if not runs:
        raise NoData(f"no run of {METHOD} carries per-epoch diagnostics")
    fig, axes = grid(len(runs) * len(PANELS), ncols=len(PANELS), panel_height=1.6, legend=False)
    for k, ((dataset, label), r) in enumerate(runs.items()):
        per_epoch, names = r.body["extras"]["per_epoch"], r.body["extras"]["modalities"]
        name = dataset if label == METHOD else f"{dataset}, {label}"
        for j, (key, ylabel) in enumerate(PANELS.items()):
            ax = axes[k * len(PANELS) + j]
            series = per_epoch[key]  # epochs x modalities
            epochs = list(range(len(series)))
            for m, modality in enumerate(names):
                ax.plot(epochs, [row[m] for row in series], color=PALETTE[m % len(PALETTE)],
                        linestyle=LINESTYLES[m % len(LINESTYLES)], marker=MARKERS[m % len(MARKERS)],
                        markevery=max(1, len(epochs) // 6), markersize=3, label=modality)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{name} (seed {r.spec.seed})")
            if j == len(PANELS) - 1:
                ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=6)
    fig.suptitle(f"Robult's diagnostics over training ({condition_title(condition)})")
    return save(fig, out_dir, "fig_10_robult_diagnostics")
