"""The leaderboard's aggregation, on records the runner wrote (``runner_results``): every number is
recomputed here another way, from the records' own metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.leaderboard import build_table, per_run
from benchmark.report.markdown import SUMMARY_END, si, summary_markdown, to_markdown
from benchmark.report.readme import update_readme
from benchmark.robustness import normalised_area, run_summaries
from benchmark.statistics import mean_interval

TWO = "synthetic_pid[n=300,n_modalities=2,noise=[0.6, 1.0]]"


def test_interval_is_the_student_t_interval() -> None:
    values = np.array([0.8, 0.85, 0.9])
    mean, lo, hi = mean_interval(values)
    expected = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
    assert np.isclose(mean, 0.85) and np.allclose((lo, hi), expected)
    assert np.isnan(mean_interval(np.array([0.5]))[1])


def test_table_means_and_worst_missing_accuracy_match_the_records_and_count_failures(runner_results) -> None:
    table = build_table(runner_results, "late_fusion").set_index(["dataset", "method"])
    for method in ("early_fusion", "late_fusion"):
        recs = [r for r in runner_results.ok if r.method == method and r.dataset == TWO]
        missing = [[m["accuracy"] for k, m in sorted(r.metrics.items()) if r.conditions[k]["family"] == "missing"]
                   for r in recs]
        row = table.loc[(TWO, method)]
        assert np.isclose(row["clean_accuracy"], np.mean([r.metrics["clean"]["accuracy"] for r in recs]))
        assert np.isclose(row["missing_mean_accuracy"], np.mean([np.mean(v) for v in missing]))
        assert np.isclose(row["missing_worst_accuracy"], np.mean([min(v) for v in missing]))
        assert row["seeds_ok"] == 3 and row["seeds_failed"] == 0
    failed = table.loc[(TWO, "raises_in_fit")]
    assert failed["seeds_ok"] == 0 and failed["seeds_failed"] == 3
    md = to_markdown(build_table(runner_results), "unit", ["raises_in_fit on x seed 0: RuntimeError: boom"])
    assert "0 (+3 failed)" in md and "RuntimeError: boom" in md


def _with_values(results, run_id: str, values: dict[str, float]):
    """``results`` with some test accuracies of one run replaced (the table's schema stays the runner's)."""
    table = results.table.copy()
    for cond, v in values.items():
        hit = ((table["run_id"] == run_id) & (table["split"] == "test") & (table["condition"] == cond)
               & (table["metric"] == "accuracy"))
        assert hit.sum() == 1, cond
        table.loc[hit, "value"] = v
    return replace(results, table=table)


def test_area_uses_the_actual_uneven_grid_and_is_normalised_by_its_width(runner_results) -> None:
    # Accuracy 1 at 0, falling linearly to 0 at 0.9, on the uneven grid 0.1, 0.2, 0.5, 0.9: area exactly 0.5.
    run = next(r for r in runner_results.ok if r.method == "early_fusion")
    rates = [0.1, 0.2, 0.5, 0.9]
    values = {"clean": 1.0, **{f"random_missing[{r}]": 1 - r / 0.9 for r in rates}}
    summary = run_summaries(_with_values(runner_results, run.run_id, values).table).loc[run.run_id]
    graded = {c["curve"] for c in run.conditions.values() if c["family"] == "missing" and c["severity"] is not None}
    assert len(graded) == 1  # the family's only curve: its area is the family's
    assert np.isclose(summary["sevavg_missing"], 0.5)
    # Treating the four points as evenly spaced (the grid mistake) would give another number.
    accs = np.array([1.0] + [1 - r / 0.9 for r in rates])
    assert np.isclose(normalised_area(np.array([0.0, *rates]), accs), 0.5)
    assert not np.isclose(normalised_area(np.arange(5.0), accs), 0.5)


def test_worst_condition_is_the_lowest_accuracy_and_ties_go_to_the_first_key(runner_results) -> None:
    run = next(r for r in runner_results.ok if r.method == "late_fusion")
    tied = {"random_missing[0.9]": 0.01, "missing_modality[m0]": 0.01}
    summary = run_summaries(_with_values(runner_results, run.run_id, tied).table).loc[run.run_id]
    assert summary["worst_condition"] == "missing_modality[m0]" and summary["worst_accuracy"] == 0.01


def test_effective_robustness_is_zero_for_the_baseline_and_paired_by_seed(runner_results) -> None:
    runs = per_run(runner_results, "late_fusion")
    base = runs[runs["method"] == "late_fusion"]
    assert np.allclose(base["er_missing"], 0.0)
    ef = runs[runs["method"] == "early_fusion"].set_index(["dataset", "seed"])
    lf = base.set_index(["dataset", "seed"])
    expected = ef["erbase_missing"] - lf["erbase_missing"]
    assert np.allclose(ef["er_missing"], expected.loc[ef.index])
    table = build_table(runner_results, "late_fusion").set_index(["dataset", "method"])
    assert np.isclose(table.loc[(TWO, "early_fusion"), "er_missing"], expected.loc[TWO].mean())
    assert "ER missing" in to_markdown(build_table(runner_results, "late_fusion"), "unit", [], "late_fusion")


def test_a_rebuild_gives_the_same_bytes_whatever_the_hash_seed(runner_folder: Path, tmp_path: Path) -> None:
    outs = []
    for seed in (0, 1, 2):
        folder = tmp_path / f"s{seed}"
        shutil.copytree(runner_folder, folder)
        done = subprocess.run([sys.executable, "-m", "benchmark", "leaderboard", "--suite",
                               str(folder / "runner.toml"), "--results", str(folder)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)})
        assert done.returncode == 0, done.stderr
        outs.append(tuple((folder / f).read_bytes() for f in ("leaderboard.csv", "leaderboard.md", "statistics.md")))
    assert outs[0] == outs[1] == outs[2]


def test_summary_ranks_methods_over_datasets_ties_share_a_rank_and_the_readme_gets_only_it(runner_results,
                                                                                             tmp_path) -> None:
    table = build_table(runner_results)
    table = table[table["method"] != "raises_in_fit"].copy()
    # Set clean accuracies so that the answer is known: on the first dataset early fusion wins, on the
    # second they tie (each then has rank 1.5).
    datasets = sorted(table["dataset"].unique())
    wanted = {(datasets[0], "early_fusion"): 0.9, (datasets[0], "late_fusion"): 0.8,
              (datasets[1], "early_fusion"): 0.7, (datasets[1], "late_fusion"): 0.7}
    table["clean_primary"] = [wanted[(d, m)] for d, m in zip(table["dataset"], table["method"], strict=True)]
    lines = summary_markdown(table, {(datasets[0], "standard", "clean", "early_fusion")})
    first = lines[: lines.index("## Capacity")]  # the ranking table (then the capacity table)
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ") for ln in first if ln.startswith("| ") and "---" not in ln}
    n = table.loc[(table["method"] == "early_fusion") & (table["dataset"] == datasets[0]), "n_parameters"].iloc[0]
    assert f"| early_fusion | {si(n)} / " in "\n".join(lines) and si(900) == "900" and si(1.65e6) == "1.65M"
    assert float(rows["early_fusion"][1]) == 1.25 and float(rows["late_fusion"][1]) == 1.75
    assert rows["early_fusion"][2] == "90.0 ✓" and rows["late_fusion"][2] == "80.0"
    assert summary_markdown(table[table["dataset"] == datasets[0]], set()) == []

    board = tmp_path / "leaderboard.md"
    board.write_text(to_markdown(table, "unit", []))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\nrest\n")
    update_readme(readme, board)
    text = readme.read_text()
    assert "### Summary (training: standard)" in text and f"## {datasets[0]} (training" not in text
    assert "old" not in text and text.endswith("rest\n") and SUMMARY_END not in text


def test_variants_of_one_dataset_are_tabulated_apart_never_pooled(runner_results) -> None:
    table = build_table(runner_results)
    ef = table[table["method"] == "early_fusion"].set_index("dataset")
    assert sorted(ef.index) == [TWO, "synthetic_pid[n=300,n_modalities=3]"]
    for label, row in ef.iterrows():
        own = [r.metrics["clean"]["accuracy"] for r in runner_results.ok if r.method == "early_fusion"
               and r.dataset == label]
        assert row["seeds_ok"] == 3 and np.isclose(row["clean_accuracy"], np.mean(own))


def test_tidy_table_has_one_row_per_run_condition_and_metric(runner_results) -> None:
    t = runner_results.table
    test = t[t["split"] == "test"]
    n_rows = sum(len(r.spec.test_conditions) for r in runner_results.ok) * 7  # accuracy ... auroc
    assert len(test) == n_rows
    assert not test.duplicated(["run_id", "condition", "metric"]).any()
    clean = test[(test["condition"] == "clean") & (test["metric"] == "accuracy")].set_index("run_id")["value"]
    for r in runner_results.ok:
        assert clean[r.run_id] == r.metrics["clean"]["accuracy"]
        assert r.conditions["random_missing[0.5]"]["family"] == "missing"
    sev = test[test["condition"] == "random_missing[0.5]"]["severity"]
    assert (sev == 0.5).all() and set(t["split"]) == {"test", "val", "run"}
    assert set(t["train_condition"]) == {"standard"} and pd.api.types.is_integer_dtype(t["seed"])
