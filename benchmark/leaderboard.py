"""The leaderboard's aggregation, from the tidy results table only (it never trains, never re-plans):
per dataset, training condition and method, each column's mean and 95% interval over seeds: clean
accuracy, mean and worst accuracy over the missing-modality conditions, the worst condition, calibration
error, training time, inference latency, peak memory, severity-averaged accuracy, and MultiBench's relative
and effective robustness. Quantities bounded by [0, 1] (``bounded``) get the logit-scale t-interval
(``benchmark.statistics.logit_intervals``), which stays inside the bounds; the others the Student t-interval.
Rendering is in ``benchmark.report``."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmark.grouped import Grouped, sorted_codes
from benchmark.results import Results
from benchmark.robustness import run_summaries
from benchmark.statistics import logit_intervals, mean_intervals

KEYS = ["dataset", "train_condition", "method"]


class Column(NamedTuple):
    header: str
    scale: float  # for display: 100 for fractions shown in %


#: The per-dataset table's main columns, in order (each a column of ``per_run``).
COLUMNS: dict[str, Column] = {
    "clean_accuracy": Column("clean acc (%)", 100.0),
    "clean_balanced_accuracy": Column("clean bal. acc (%)", 100.0),
    "clean_auroc": Column("clean AUROC (%)", 100.0),
    "missing_mean_accuracy": Column("missing: mean acc (%)", 100.0),
    "missing_worst_accuracy": Column("missing: worst acc (%)", 100.0),
    # The DRO paper's robust accuracy: the worst accuracy over the covariate-shift grid.
    "covariate_worst_accuracy": Column("covariate: worst acc (%)", 100.0),
    "worst_accuracy": Column("worst condition acc (%)", 100.0),
    "clean_ece": Column("clean ECE (%)", 100.0),
    "fit_seconds": Column("train time (s)", 1.0),
    "inference_us_per_sample": Column("inference (us/sample)", 1.0),
    "peak_memory_mb": Column("peak memory (MB)", 1.0),
}


#: Prefixes of the per-family robustness columns: severity-averaged accuracy, MultiBench's relative and
#: effective robustness.
ROBUSTNESS_PREFIXES = ("sevavg_", "rr_", "er_")


def bounded(column: str) -> bool:
    """Whether a column's per-run values lie in [0, 1] (accuracies, AUROC, ECE, severity-averaged
    accuracy): its interval is the logit-scale one. Relative robustness sums 0.1-wide trapezoids (up to
    0.1 per level: its own bound, handled apart) and effective robustness is a difference."""
    return ((column in COLUMNS and COLUMNS[column].scale == 100.0) or column == "clean_primary"
            or column.startswith("sevavg_"))


def _test_metric(table: pd.DataFrame, metric: str, condition: str = "clean") -> pd.Series:
    rows = table[(table["split"] == "test") & (table["condition"] == condition) & (table["metric"] == metric)]
    return pd.Series(rows["value"].to_numpy(), index=rows["run_id"].astype(str).to_numpy(), name="value")


def _family(table: pd.DataFrame, family: str) -> pd.DataFrame:
    """Mean and worst accuracy of each run over the family's conditions (np.mean in condition-key order,
    so the numbers do not depend on the order records were read in)."""
    rows = table[(table["split"] == "test") & (table["family"] == family) & (table["metric"] == "accuracy")]
    run, run_ids = sorted_codes(rows["run_id"])
    if not len(run):
        return pd.DataFrame({"mean": [], "worst": []}, dtype=float)
    # Grouped by run, each run's conditions sorted by key (np.lexsort: stable, the last key first).
    order = np.lexsort((sorted_codes(rows["condition"])[0], run))
    run, value = run[order], rows["value"].to_numpy(float)[order]
    first = np.r_[True, run[1:] != run[:-1]]
    groups = Grouped(np.cumsum(first) - 1, int(first.sum()))
    return pd.DataFrame({"mean": groups.mean(value), "worst": groups.reduce(value, lambda m: m.min(axis=1))},
                        index=run_ids[run[first]])


def per_run(results: Results, baseline: str | None = None) -> pd.DataFrame:
    """One row per finished run: its keys, the leaderboard's columns, the robustness summaries and, with
    a ``baseline``, effective robustness against the baseline's run of the same seed."""
    runs = results.runs()
    runs = runs[runs["status"] == "ok"].set_index("run_id", drop=False)
    table = results.table
    runs["clean_accuracy"] = _test_metric(table, "accuracy")
    for metric in ("balanced_accuracy", "auroc"):
        runs[f"clean_{metric}"] = _test_metric(table, metric)
    primary = results.primary_metrics()
    runs["primary_metric"] = runs["dataset"].map(primary)
    metric_of_run = runs["primary_metric"].to_numpy()
    clean_primary = np.full(len(runs), math.nan)
    for m in set(metric_of_run):
        chosen = metric_of_run == m
        clean_primary[chosen] = runs[f"clean_{m}"].to_numpy(float)[chosen]
    runs["clean_primary"] = clean_primary
    missing = _family(table, "missing")
    runs["missing_mean_accuracy"] = missing["mean"]
    runs["missing_worst_accuracy"] = missing["worst"]
    runs["covariate_worst_accuracy"] = _family(table, "covariate")["worst"]
    summaries = run_summaries(table)
    runs["worst_accuracy"] = summaries.get("worst_accuracy", math.nan)
    runs["clean_ece"] = _test_metric(table, "ece")
    quantities = table[table["split"] == "run"].pivot(index="run_id", columns="metric", values="value")
    quantities.index = quantities.index.astype(str)
    for col in ("fit_seconds", "inference_us_per_sample", "peak_memory_mb", "n_parameters", "train_flops",
                "memory_fit_mb", "kept_before_first_step", "best_epoch"):
        runs[col] = quantities[col] if col in quantities.columns else math.nan
    curves = sorted(c for c in summaries.columns if c.startswith(("sevavg_", "rr_", "rrmax_", "erbase_")))
    for col in curves:
        runs[col] = summaries[col]
    runs["worst_condition"] = summaries.get("worst_condition", "")
    sums = [c for c in curves if c.startswith("erbase_")]
    if baseline is not None and sums:
        # MultiBench's effective robustness: the sums of drops from clean, method minus baseline, same seed.
        pair = ["dataset", "train_condition", "seed"]
        base = runs[runs["method"] == baseline][[*pair, *sums]]
        matched = runs[pair].merge(base, on=pair, how="left").set_index(runs.index)
        for col in sums:
            er = runs[col] - matched[col]
            if er.notna().any():
                runs[f"er_{col[7:]}"] = er
    return runs.sort_values([*KEYS, "draw", "seed"], kind="stable").reset_index(drop=True)


def build_table(results: Results, baseline: str | None = None) -> pd.DataFrame:
    """One row per (dataset, training condition, method): each column's mean and interval over seeds, the
    robustness summaries, and effective robustness against ``baseline`` (paired by seed)."""
    runs = per_run(results, baseline)
    all_runs = results.runs()
    all_runs["ok"] = all_runs["status"] == "ok"
    counts = all_runs.groupby(KEYS, sort=True).agg(seeds_ok=("ok", "sum"), n=("ok", "size"), stale=("stale", "sum"))
    value_columns = [*COLUMNS, "clean_primary", *(c for c in runs.columns if c.startswith(ROBUSTNESS_PREFIXES))]
    positions = runs.groupby(KEYS, sort=True).indices
    # Each column's mean and interval over the seeds of every group at once (bit for bit mean_interval's).
    group_keys = list(positions)
    codes = np.full(len(runs), -1, dtype=np.int64)
    for i, key in enumerate(group_keys):
        codes[positions[key]] = i
    inside = codes >= 0
    intervals = {c: (logit_intervals if bounded(c) else mean_intervals)(runs[c].to_numpy(float)[inside],
                                                                         codes[inside], len(group_keys))
                 for c in value_columns}
    for c in (c for c in value_columns if c.startswith("rr_")):
        # Relative robustness lies in [0, rrmax] (rrmax: the same for every run of a group, one grid): its
        # interval is the logit-scale one of rr / rrmax, scaled back.
        most = runs[f"rrmax_{c[3:]}"].to_numpy(float)[inside]
        _, lo, hi = logit_intervals(runs[c].to_numpy(float)[inside] / most, codes[inside], len(group_keys))
        top = Grouped(codes[inside], len(group_keys)).mean(most)
        intervals[c] = (intervals[c][0], lo * top, hi * top)
    finite_er = {c: np.bincount(codes[inside], weights=np.isfinite(runs[c].to_numpy(float)[inside]),
                                minlength=len(group_keys)) > 0 for c in value_columns if c.startswith("er_")}
    number = {key: i for i, key in enumerate(group_keys)}
    worst_conditions = runs["worst_condition"].to_numpy()
    sizes = {col: runs[col].to_numpy(float) for col in ("n_parameters", "train_flops")}
    untrained = runs["kept_before_first_step"].to_numpy(float)
    primary_metric = runs["primary_metric"].to_numpy()
    rows = []
    for key, count in zip(counts.index, counts.to_dict("records"), strict=True):
        dataset, cond, method = key
        row: dict[str, object] = {"dataset": dataset, "train_condition": cond, "method": method,
                                  "seeds_ok": int(count["seeds_ok"]),
                                  "seeds_failed": int(count["n"] - count["seeds_ok"]),
                                  "seeds_stale": int(count["stale"])}
        idx = positions.get(key)
        if idx is not None:
            g = number[key]
            for col in value_columns:
                if col.startswith("er_") and not finite_er[col][g]:
                    continue
                mean, lo, hi = intervals[col]
                row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = float(mean[g]), float(lo[g]), float(hi[g])
            worst = [w for w in worst_conditions[idx] if isinstance(w, str) and w]
            # The most frequent worst condition over seeds; ties go to the first in sorted order (deterministic).
            row["worst_condition"] = max(sorted(set(worst)), key=worst.count) if worst else ""
            for col in ("n_parameters", "train_flops"):
                row[col] = float(np.mean(sizes[col][idx]))
            row["primary_metric"] = primary_metric[idx][0]
            # Runs whose kept weights never took an optimisation step (untrained weights on the board).
            row["seeds_kept_untrained"] = int(np.nansum(untrained[idx]))
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=[*KEYS, "seeds_ok", "seeds_failed", "seeds_stale"])
    out = pd.DataFrame(rows)
    # Every column a reader expects, even where no run finished (then empty: a board of failures only).
    for col in [*COLUMNS, "clean_primary"]:
        for suffix in ("", "_ci_low", "_ci_high"):
            if col + suffix not in out:
                out[col + suffix] = math.nan
    for col, empty in (("worst_condition", ""), ("n_parameters", math.nan), ("train_flops", math.nan),
                       ("primary_metric", "accuracy"), ("seeds_kept_untrained", 0)):
        if col not in out:
            out[col] = empty
    return out


def with_tuning(table: pd.DataFrame, chosen: dict, spread: dict, rule: str) -> pd.DataFrame:
    """The selection rule, the draw it chose and the tuning spread, as columns."""
    if table.empty:
        return table
    keys = list(zip(table["method"], table["dataset"], table["train_condition"], strict=True))
    table = table.copy()
    table["selection_rule"] = rule
    table["draw_selected"] = [chosen.get(k, 0) for k in keys]
    table["draws"] = [spread.get(k, (1, 0.0))[0] for k in keys]
    table["tuning_spread_clean_accuracy"] = [spread.get(k, (1, 0.0))[1] for k in keys]
    return table
