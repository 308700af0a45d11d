"""Robult's diagnostics over training: the mean per-dimension spread of each modality's unique features
U (a collapse shows as a fall to 0) and the cosine of the fusion branch S with each redundant feature Z,
per dataset (one line per modality; the lowest seed)."""

from __future__ import annotations

from benchmark.figure_style import LINESTYLES, PALETTE, grid, save
from benchmark.figures import NoData, by, ok_records

METHOD = "robult"
PANELS = {"u_std_mean": "spread of U (mean std per dimension)", "cos_s_z": "cos(S, Z_i)"}


def draw(records: list[dict], out_dir) -> list:
    datasets = {k: v for k, v in by(ok_records(records, METHOD), "dataset").items()
                if any("per_epoch" in r.get("extras", {}) for r in v)}
    if not datasets:
        raise NoData(f"no run of {METHOD} carries per-epoch diagnostics")
    fig, axes = grid(len(datasets) * len(PANELS), ncols=len(PANELS))
    for k, ((dataset,), recs) in enumerate(datasets.items()):
        r = min(recs, key=lambda rec: rec["spec"]["seed"])
        per_epoch, names = r["extras"]["per_epoch"], r["extras"]["modalities"]
        for j, (key, label) in enumerate(PANELS.items()):
            ax = axes[k * len(PANELS) + j]
            series = per_epoch[key]  # epochs x modalities
            epochs = list(range(len(series)))
            for m, name in enumerate(names):
                ax.plot(epochs, [row[m] for row in series], color=PALETTE[(m + 1) % len(PALETTE)],
                        linestyle=LINESTYLES[m % len(LINESTYLES)], label=name)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.set_title(f"{dataset} (seed {r['spec']['seed']})")
    axes[0].legend(fontsize=7)
    return save(fig, out_dir, "fig_10_robult_diagnostics")
