"""No interval of a bounded quantity leaves its bounds on a committed page: accuracies, AUROC, ECE and the
severity-averaged accuracy stay in [0, 1] in every ``leaderboard.csv`` (and [0, 100] in the Markdown
pages), relative robustness (a sum of accuracies) stays >= 0. The committed tables are rebuilt by the
lead after a change to the statistics; ``BENCHMARK_CHECK_RESULTS`` points the check at another results
folder (a rebuild in /tmp, say). A second test rebuilds a committed suite with this code and checks it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_cli

#: Columns that are not bounded by [0, 1]: times, memory, sizes, differences, sums over levels.
UNBOUNDED = {"fit_seconds", "inference_us_per_sample", "peak_memory_mb", "n_parameters", "train_flops",
             "primary_delta_to_best", "tuning_spread_clean_accuracy"}
NON_NEGATIVE_PREFIXES = ("rr_",)  # MultiBench's relative robustness: 0.1-wide trapezoids of accuracies
DIFFERENCE_PREFIXES = ("er_",)
CELL = re.compile(r"^(-?\d+(?:\.\d+)?) \[(-?\d+(?:\.\d+)?), (-?\d+(?:\.\d+)?)\]")
#: Markdown columns whose intervals are differences or effects (signed), not levels.
SIGNED_HEADERS = ("Δ", "difference", "effect", "ER ", "interval")


def results_root() -> Path:
    return Path(os.environ.get("BENCHMARK_CHECK_RESULTS", REPO / "results"))


def csv_violations(path: Path) -> list[str]:
    table = pd.read_csv(path)
    out = []
    for low in (c for c in table.columns if c.endswith("_ci_low")):
        base = low[: -len("_ci_low")]
        if base in UNBOUNDED or base.startswith(DIFFERENCE_PREFIXES):
            continue
        lo, hi = table[low].to_numpy(float), table[f"{base}_ci_high"].to_numpy(float)
        upper = np.inf if base.startswith(NON_NEGATIVE_PREFIXES) else 1.0
        bad = (lo < 0) | (hi > upper)
        out += [f"{path}: {base} row {i}: [{lo[i]}, {hi[i]}]" for i in np.flatnonzero(bad)]
    return out


def markdown_violations(path: Path) -> list[str]:
    """Cells ``mean [low, high]`` in a column whose header says (%) and is not a difference."""
    out, header = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        for name, cell in zip(header, cells, strict=False):
            match = CELL.match(cell)
            if match and "(%)" in name and not any(s in name for s in SIGNED_HEADERS):
                lo, hi = float(match.group(2)), float(match.group(3))
                if lo < 0 or hi > 100:
                    out.append(f"{path}:{number}: {name}: {cell}")
    return out


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted([root / "leaderboard.csv", *root.glob("*/leaderboard.csv")]):
        if path.is_file():
            out += csv_violations(path)
    for path in sorted([*root.glob("*.md"), *root.glob("*/*.md")]):
        if path.name.startswith(("leaderboard", "statistics")):
            out += markdown_violations(path)
    return out


def test_no_committed_interval_of_a_bounded_quantity_leaves_its_bounds() -> None:
    root = results_root()
    assert (root / "leaderboard.csv").is_file()
    bad = violations(root)
    assert not bad, f"{len(bad)} intervals leave their bounds, e.g. {bad[:5]}"


def test_the_check_finds_an_interval_past_100(tmp_path: Path) -> None:
    (tmp_path / "leaderboard.csv").write_text("dataset,clean_accuracy,clean_accuracy_ci_low,clean_accuracy_ci_high,"
                                              "fit_seconds,fit_seconds_ci_low,fit_seconds_ci_high\nd,0.99,0.97,1.01,"
                                              "3,-1,7\n")
    (tmp_path / "leaderboard.md").write_text("| method | clean acc (%) | Δ to best (points) |\n|---|---|---|\n"
                                             "| m | 99.0 [97.0, 101.0] | -1.0 [-3.0, +1.0] |\n")
    assert len(violations(tmp_path)) == 2


@pytest.mark.parametrize("suite", ["quick"])
def test_a_rebuild_keeps_every_bounded_interval_inside(tmp_path: Path, suite: str) -> None:
    folder = tmp_path / suite
    shutil.copytree(REPO / "results" / suite / "runs", folder / "runs")
    done = run_cli("leaderboard", "--suite", suite, "--results", str(folder))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(folder / "leaderboard.csv")
    assert "clean_accuracy_ci_low" in table and table["clean_accuracy_ci_low"].notna().any()
    assert not violations(folder)
