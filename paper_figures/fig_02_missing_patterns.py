"""Missing-pattern heat map: accuracy (%, mean over seeds) of each method for each subset of modalities
present (in the suite's grid order), one panel per dataset, drawn per training condition."""

from __future__ import annotations

from pathlib import Path

from benchmark.figure_style import grid, save
from benchmark.figures import NoData, condition_title, main_condition, of_condition, values
from benchmark.results import Results

PER_CONDITION = True
PROTOCOL = "missing_pattern"


def patterns(results: Results) -> dict[str, dict[str, str]]:
    """Dataset -> {condition key: the modalities it keeps present (its resolved arguments)}, in the order
    of the suite's grid (the runs' test conditions)."""
    out: dict[str, dict[str, str]] = {}
    for r in results.ok:
        out.setdefault(r.dataset, {k: ",".join(map(str, r.conditions[k]["args"])) for k in r.spec.test_conditions
                                   if r.conditions[k]["protocol"] == PROTOCOL})
    return out


def draw(results: Results, out_dir: Path) -> list[Path]:
    condition = main_condition(results)
    acc = of_condition(values(results), condition)
    acc = acc[acc["protocol"] == PROTOCOL][["dataset", "method", "condition", "value"]]
    if acc.empty:
        raise NoData(f"no run was evaluated under {PROTOCOL}[*]")
    acc = acc.astype({"dataset": str, "method": str, "condition": str})
    labels = patterns(results)
    n = acc["dataset"].nunique()
    fig, axes = grid(n, ncols=2, panel_height=2.1, legend=False)
    image = None
    for ax, (dataset, part) in zip(axes, acc.groupby("dataset"), strict=True):
        present = set(part["condition"])
        order = [k for k in labels[dataset] if k in present]
        matrix = part.groupby(["method", "condition"])["value"].mean().unstack("condition")[order] * 100
        image = ax.imshow(matrix.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=100)
        ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=6)
        ax.set_xticks(range(len(order)), [labels[dataset][k] for k in order], rotation=90, fontsize=6)
        ax.set_title(dataset)
        ax.set_xlabel("modalities present")
        ax.grid(False)
    fig.colorbar(image, ax=axes, label="accuracy (%)", shrink=0.6)
    fig.suptitle(f"Accuracy with only these modalities present ({condition_title(condition)})")
    return save(fig, out_dir, "fig_02_missing_patterns")
