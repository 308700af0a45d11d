"""Markdown of the leaderboard: the summary per training condition, then a table per dataset and
training condition with every column's interval, the difference to the best with its interval and the
non-inferiority mark, the robustness summaries and the failed runs. What each mark and interval means is
printed under every table that carries it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.leaderboard import COLUMNS, bounded
from benchmark.selection import RULES
from benchmark.statistics import ALPHA, MARGIN, noninferiority_text, rank_scores

SUMMARY_END = "<!-- summary:end -->"
CONFIDENCE_TEXT = f"{int((1 - ALPHA) * 100)}% t-interval"
INTERVAL_TEXT = (f"Intervals are {int((1 - ALPHA) * 100)}% over seeds. Bounded quantities (accuracies, AUROC, ECE, "
                 "severity-averaged accuracy) show mean [low, high] of the logit-scale t-interval (the delta method: "
                 "logit(mean) ± t·se/(mean(1 − mean)), mapped back; relative robustness the same on its own range), "
                 "which stays inside [0, 100] and keeps the "
                 "t-interval's small-sample width, where a bootstrap over 3-5 seeds would be too narrow; the "
                 f"others (times, memory, differences) mean ± half-width of the {CONFIDENCE_TEXT}.")


def si(value: float) -> str:
    """A count with an SI prefix and three significant digits: 7.75k, 1.65M, 197G."""
    if not np.isfinite(value):
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}"
    return f"{value:.3g}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table as lines: the one place that writes the pipes."""
    return ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def cell(row: Mapping, col: str, scale: float) -> str:
    """``mean [low, high]`` for a bounded quantity (its interval is not symmetric), ``mean ± half-width``
    otherwise; a dash where there is no value."""
    mean, lo, hi = row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"]
    if not np.isfinite(mean):
        return "—"
    digits = 1 if scale == 100.0 or abs(mean) >= 10 else 3
    text = f"{mean * scale:.{digits}f}"
    if np.isfinite(lo) and (bounded(col) or col.startswith("rr_")):
        text += f" [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"
    elif np.isfinite(lo):
        text += f" ± {(hi - lo) / 2 * scale:.{digits}f}"
    return text


def delta_cell(row: Mapping) -> str:
    """The clean primary score's difference to the best, in points, with its paired t-interval."""
    delta = row.get("primary_delta_to_best", np.nan)
    if not isinstance(delta, float) or not np.isfinite(delta):
        return "—"
    if row.get("primary_is_best"):
        return "best"
    lo, hi = row["primary_delta_to_best_ci_low"], row["primary_delta_to_best_ci_high"]
    return f"{delta * 100:+.1f}" + (f" [{lo * 100:+.1f}, {hi * 100:+.1f}]" if np.isfinite(lo) else "")


def _seeds(r: Mapping) -> str:
    return (f"{r['seeds_ok']}" + (f" (+{r['seeds_failed']} failed)" if r["seeds_failed"] else "")
            + (f" ({r['seeds_stale']} stale)" if r.get("seeds_stale", 0) else ""))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts of Python values, as ``to_dict("records")`` gives them, a column at a
    time (``to_dict`` indexes every column once per call, slow on the leaderboard's hundred columns)."""
    names = list(frame.columns)
    columns = [frame[c].tolist() for c in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _rows(part: list[dict[str, Any]], columns: list[tuple[str, float]], extra: list[Callable[[Mapping], str]],
          marks: set, dataset: str, cond: str) -> list[list[str]]:
    out = []
    for row in part:
        cells = [row["method"]]
        for c, scale in columns:
            if c not in row:
                cells.append("—")
                continue
            primary = f"clean_{row.get('primary_metric', 'accuracy')}"
            mark = c == primary and (dataset, cond, "clean", row["method"]) in marks
            cells.append(cell(row, c, scale) + (" ✓" if mark else ""))
        out.append(cells + [f(row) for f in extra])
    return out


def _metric_name(metric: str) -> str:
    return {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}.get(metric, metric)


def summary_markdown(table: pd.DataFrame, marks: set, margin: float = MARGIN) -> list[str]:
    """Per training condition: each method's clean score on every dataset in the dataset's primary
    metric, its mean rank over the datasets (1 = best; ties share the mean rank) and its missing-family
    accuracy averaged over the datasets; then the training conditions side by side, each method's size
    and training cost per dataset, and the runs that kept untrained weights. What the README shows; the
    per-dataset tables follow it. Ranks are ``rank_scores``'s (ties share a rank)."""
    if table.empty or table["dataset"].nunique() < 2:
        return []
    out = []
    by_condition = dict(list(table.groupby("train_condition", sort=True)))
    conditions = sorted(by_condition, key=lambda c: (c != "standard", c))  # standard training first
    primary = table.groupby("dataset")["primary_metric"].first().to_dict() if "primary_metric" in table else {}
    for cond in conditions:
        part = by_condition[cond]
        score = part.pivot(index="method", columns="dataset", values="clean_primary")
        ranks = rank_scores(score, axis=0).mean(axis=1)
        missing = part.pivot(index="method", columns="dataset", values="missing_mean_accuracy").mean(axis=1)
        datasets = list(score.columns)
        rows = []
        for method in ranks.sort_values(kind="stable").index:
            cells = [f"{score.loc[method, d] * 100:.1f}" + (" ✓" if (d, cond, "clean", method) in marks else "")
                     if np.isfinite(score.loc[method, d]) else "—" for d in datasets]
            rows.append([method, f"{ranks[method]:.2f}", *cells, f"{missing[method] * 100:.1f}"])
        balanced = [d for d in datasets if primary.get(d) == "balanced_accuracy"]
        header = [f"{d} (bal. acc)" if d in balanced else d for d in datasets]
        out += [f"## Summary (training: {cond})", "",
                f"Clean test score (%) on each dataset in its primary metric, mean over seeds: accuracy, or "
                f"balanced accuracy where the majority class exceeds 80% ({', '.join(balanced) or 'none here'}; "
                f"AUROC beside it in the per-dataset tables). Mean rank over the {len(datasets)} datasets (1 = best; "
                "equal scores share their mean rank); missing: the `missing` family's mean accuracy, averaged over "
                "the datasets.", "",
                *md_table(["method", "mean rank", *header, "missing (%)"], rows), "", noninferiority_text(margin), ""]
    if len(conditions) > 1:
        rows = []
        methods = sorted(set(table["method"]))
        for method in methods:
            cells = []
            for cond in conditions:
                part = by_condition[cond]
                part = part[part["method"] == method]
                cells += [f"{part[col].mean() * 100:.1f}" for col in ("clean_primary", "missing_mean_accuracy")]
            rows.append([method, *cells])
        header = ["method", *(f"{c}: {what}" for c in conditions for what in ("clean", "missing"))]
        out += ["## Training conditions side by side", "",
                "Each method's clean score (primary metric) and `missing`-family accuracy (%), averaged over the "
                "datasets, under each training condition: what training with scarce labels or with missing "
                "modalities costs or buys it.", "", *md_table(header, rows), ""]
    if "n_parameters" in table:
        sizes = table[table["train_condition"] == conditions[0]]
        params = sizes.pivot(index="method", columns="dataset", values="n_parameters")
        flops = sizes.pivot(index="method", columns="dataset", values="train_flops")
        rows = [[m, *(f"{si(params.loc[m, d])} / {si(flops.loc[m, d])}" if np.isfinite(params.loc[m, d])
                      else "—" for d in params.columns)] for m in params.index]
        out += ["## Capacity", "",
                "Trainable parameters / training FLOPs (mean over seeds, training "
                f"`{conditions[0]}`) of each method on each dataset, at the suite's shared width: methods differ in "
                "size as well as in objective.", "", *md_table(["method", *params.columns], rows), ""]
    if "seeds_kept_untrained" in table and (table["seeds_kept_untrained"] > 0).any():
        bad = table[table["seeds_kept_untrained"] > 0]
        out += ["Kept weights from before the first optimisation step (early stopping found nothing better than "
                "the untrained network): " + "; ".join(
                    f"{r.method} on {r.dataset} ({r.train_condition}, {int(r.seeds_kept_untrained)} of "
                    f"{int(r.seeds_ok)} seeds)" for r in bad.itertuples()) + ".", ""]
    return out


def to_markdown(table: pd.DataFrame, suite: str, failed: list[str], baseline: str | None = None,
                rule: str = "clean_val", marks: set | None = None, notes: list[str] | None = None,
                margin: float = MARGIN) -> str:
    marks = marks or set()
    legend = noninferiority_text(margin)
    out = [f"# Leaderboard: suite `{suite}`", "",
           f"{INTERVAL_TEXT} Missing: the conditions of the `missing` family (each modality removed, random "
           "missingness). Rebuilt from `runs/` by `python -m benchmark leaderboard`.", "",
           f"Model selection: `{rule}` ({RULES[rule].text}). ✓ after the clean score in the dataset's primary "
           f"metric: {legend[3:]} See `statistics.md`.", ""]
    for note in notes or []:
        out += [f"Note: {note}.", ""]
    if table.empty:
        out += ["No run of this suite is recorded yet: `python -m benchmark run --suite " + suite + "`.", ""]
    out += summary_markdown(table, marks, margin) + [SUMMARY_END, ""]
    families = sorted(c[7:] for c in table.columns if c.startswith("sevavg_") and not c.endswith(("_low", "_high")))
    table = table.reset_index(drop=True)  # labels = places in all_rows
    all_rows = records(table)
    for (dataset, cond), part in table.groupby(["dataset", "train_condition"], sort=True):
        if "clean_primary" in part:  # absent when every run of the suite failed
            part = part.sort_values("clean_primary", ascending=False, na_position="last")
        rows = [all_rows[i] for i in part.index]
        out += [f"## {dataset} (training: {cond})", ""]
        main = [(c, col.scale) for c, col in COLUMNS.items()]
        header = ["method", *(col.header for col in COLUMNS.values()), "Δ to best (points)", "worst condition",
                  "seeds"]
        out += md_table(header, _rows(rows, main, [delta_cell, lambda r: f"`{r['worst_condition']}`", _seeds], marks,
                                      dataset, cond)) + [""]
        out += [f"Δ to best: the clean primary score minus the best's, paired over seeds, with its "
                f"{CONFIDENCE_TEXT}. {legend}", ""]
        fams = [f for f in families if f"sevavg_{f}" in part and part[f"sevavg_{f}"].notna().any()]
        if fams:
            out += [f"Robustness on {dataset}, per condition family (the mean over the family's curves of accuracy "
                    "against severity, clean at 0): severity-averaged accuracy (the trapezoid area on the actual "
                    "severities divided by the grid's width, %); RR, MultiBench's relative robustness (the trapezoid "
                    "sum with MultiBench's fixed step of 0.1 per level, whatever the severities; it grows with the "
                    "number of levels, so compare it within a row of families only across methods); ER, MultiBench's "
                    f"effective robustness against `{baseline}` (points of accuracy kept beyond the baseline's curve "
                    "shifted to the method's clean accuracy, summed over the levels), paired by seed.", ""]
            cols = ([(f"sevavg_{f}", 100.0) for f in fams] + [(f"rr_{f}", 1.0) for f in fams]
                    + [(f"er_{f}", 100.0) for f in fams])
            header = ["method", *(f"sev-avg acc {f} (%)" for f in fams), *(f"RR {f}" for f in fams),
                      *(f"ER {f}" for f in fams)]
            out += md_table(header, _rows(rows, cols, [], marks, dataset, cond)) + [""]
    if failed:
        out += ["## Failed runs", "", *[f"- {f}" for f in failed], ""]
    return "\n".join(out)
