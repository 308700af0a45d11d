"""The leaderboard, rebuilt from stored records only (it never trains): per dataset and training
condition, each method's clean accuracy, mean and worst accuracy over the missing-modality conditions,
calibration error, training time and inference latency, as mean and 95% t-interval over seeds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.records import dataset_label
from benchmark.robustness import effective_robustness, summarize
from benchmark.selection import DEFAULT_RULE, RULES, select, tuning_spread
from benchmark.statistics import sem, t_interval

#: Leaderboard columns: name -> (header, function of one record's body and its robustness summary,
#: scale for display).
COLUMNS: dict[str, tuple[str, Any, float]] = {
    "clean_accuracy": ("clean acc (%)", lambda r, s: r["metrics"]["clean"]["accuracy"], 100.0),
    "missing_mean_accuracy": ("missing: mean acc (%)", lambda r, s: _family(r, "missing", np.mean), 100.0),
    "missing_worst_accuracy": ("missing: worst acc (%)", lambda r, s: _family(r, "missing", np.min), 100.0),
    "worst_accuracy": ("worst condition acc (%)", lambda r, s: s.get("worst_accuracy", math.nan), 100.0),
    "clean_ece": ("clean ECE (%)", lambda r, s: r["metrics"]["clean"]["ece"], 100.0),
    "fit_seconds": ("train time (s)", lambda r, s: r["timings"]["fit_seconds"], 1.0),
    "inference_us_per_sample": ("inference (us/sample)",
                                lambda r, s: r["timings"]["inference_seconds_per_sample"] * 1e6, 1.0),
}
CONFIDENCE = 0.95


def _family(record: dict[str, Any], family: str, reduce) -> float:
    values = [m["accuracy"] for m in record["metrics"].values() if m.get("family") == family]
    return float(reduce(values)) if values else math.nan


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds; the interval is NaN with fewer than two seeds."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2 or values.std() == 0:
        return (mean, mean, mean) if len(values) >= 2 else (mean, math.nan, math.nan)
    lo, hi = t_interval(confidence, len(values) - 1, loc=mean, scale=sem(values))
    return mean, float(lo), float(hi)


def build_table(records: list[dict[str, Any]], baseline: str | None = None) -> pd.DataFrame:
    """One row per (dataset, training condition, method): each column's mean and interval over seeds,
    the robustness summaries, and effective robustness against ``baseline`` (paired by seed)."""
    rows = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        s = r["spec"]
        groups.setdefault((dataset_label(s), s["train_condition"], s["method"]), []).append(r)
    # Each finished record's robustness summary, computed once (keyed by id(): records are unhashable dicts).
    summary = {id(r): summarize(r) for r in records if r.get("status") == "ok"}
    base_by_seed = {(dataset_label(s), s["train_condition"], s["seed"]): r for r in records
                    if (s := r["spec"])["method"] == baseline and r.get("status") == "ok"}
    for (dataset, cond, method), recs in sorted(groups.items()):
        ok = [r for r in recs if r.get("status") == "ok"]
        row: dict[str, Any] = {"dataset": dataset, "train_condition": cond, "method": method,
                               "seeds_ok": len(ok), "seeds_failed": len(recs) - len(ok)}
        per_seed: dict[str, list[float]] = {}
        for r in ok:
            sr = summary[id(r)]
            values = {col: get(r, sr) for col, (_, get, _) in COLUMNS.items()}
            values.update({k: v for k, v in sr.items() if not isinstance(v, str)})
            base = base_by_seed.get((dataset, cond, r["spec"]["seed"]))
            if base is not None:
                values.update(effective_robustness(r, base, (sr, summary[id(base)])))
            for k, v in values.items():
                per_seed.setdefault(k, []).append(v)
        for col, vals in per_seed.items():
            row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = mean_interval(np.array(vals))
        worst = [summary[id(r)].get("worst_condition") for r in ok]
        # The most frequent worst condition over seeds; ties go to the first in sorted order (deterministic).
        row["worst_condition"] = max(sorted(set(worst)), key=worst.count) if worst and worst[0] else ""
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["dataset", "train_condition", "method", "seeds_ok", "seeds_failed"])
    return pd.DataFrame(rows)


def _cell(row: pd.Series, col: str, scale: float) -> str:
    mean, lo, hi = row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"]
    if not np.isfinite(mean):
        return "—"
    digits = 1 if scale == 100.0 or abs(mean) >= 10 else 3
    text = f"{mean * scale:.{digits}f}"
    if np.isfinite(lo):
        text += f" ± {(hi - lo) / 2 * scale:.{digits}f}"
    return text


def _table(part: pd.DataFrame, columns: list[tuple[str, str, float]], extra: list[tuple[str, Any]]) -> list[str]:
    header = ["method", *(h for _, h, _ in columns), *(h for h, _ in extra)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in part.iterrows():
        cells = [row["method"], *(_cell(row, c, s) + (" ✓" if row.get(f"{c}_mark", False) else "")
                                  if c in row else "—" for c, _, s in columns),
                 *(f(row) for _, f in extra)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def to_markdown(table: pd.DataFrame, suite: str, failed: list[str], baseline: str | None = None,
                rule: str = DEFAULT_RULE, marks: set | None = None) -> str:
    marks = marks or set()
    out = [f"# Leaderboard: suite `{suite}`", "",
           f"Mean ± half-width of the {int(CONFIDENCE * 100)}% t-interval over seeds. Missing: the conditions "
           "of the `missing` family (each modality removed, random missingness). Rebuilt from `runs/` by "
           "`python -m benchmark leaderboard`.", "",
           f"Model selection: `{rule}` ({RULES[rule].text}). ✓ after the clean accuracy: not significantly "
           "worse than the best (paired t-test over seeds, Holm-corrected; see `statistics.md`).", ""]
    if table.empty:
        out += ["No run of this suite is recorded yet: `python -m benchmark run --suite " + suite + "`.", ""]
    out += summary_markdown(table, marks) + [SUMMARY_END, ""]
    families = sorted(c[4:] for c in table.columns if c.startswith("auc_") and not c.endswith(("_low", "_high")))
    for (dataset, cond), part in table.groupby(["dataset", "train_condition"], sort=True):
        part = part.sort_values("clean_accuracy", ascending=False, na_position="last")
        out += [f"## {dataset} (training: {cond})", ""]
        main = [(c, h, s) for c, (h, _, s) in COLUMNS.items()]
        part = part.assign(clean_accuracy_mark=[(dataset, cond, "clean", m) in marks for m in part["method"]])
        seeds = ("seeds", lambda r: f"{r['seeds_ok']}"
                 + (f" (+{r['seeds_failed']} failed)" if r["seeds_failed"] else ""))
        out += _table(part, main, [("worst condition", lambda r: f"`{r['worst_condition']}`"), seeds]) + [""]
        fams = [f for f in families if part.get(f"auc_{f}", pd.Series(dtype=float)).notna().any()]
        if fams:
            out += [f"Robustness on {dataset}: relative robustness (area under accuracy vs severity, clean at 0, "
                    f"normalised by the grid's width, %) and effective robustness against `{baseline}` "
                    "(points of accuracy kept beyond the baseline's, after equalising clean accuracy).", ""]
            cols = [(f"auc_{f}", f"AUC {f}", 100.0) for f in fams] + [(f"er_{f}", f"ER {f}", 100.0) for f in fams]
            out += _table(part, cols, []) + [""]
    if failed:
        out += ["## Failed runs", "", *[f"- {f}" for f in failed], ""]
    return "\n".join(out)


SUMMARY_END = "<!-- summary:end -->"


def summary_markdown(table: pd.DataFrame, marks: set) -> list[str]:
    """One table per training condition: each method's clean accuracy on every dataset, its mean rank
    over the datasets (1 = best; ties share the mean rank) and its missing-family accuracy averaged over
    the datasets. What the README shows; the per-dataset tables follow it."""
    if table.empty or table["dataset"].nunique() < 2:
        return []
    out = []
    by_condition = dict(list(table.groupby("train_condition", sort=True)))
    for cond in sorted(by_condition, key=lambda c: (c != "standard", c)):  # standard training first
        part = by_condition[cond]
        acc = part.pivot(index="method", columns="dataset", values="clean_accuracy")
        ranks = acc.rank(axis=0, ascending=False).mean(axis=1)
        missing = part.pivot(index="method", columns="dataset", values="missing_mean_accuracy").mean(axis=1)
        datasets = list(acc.columns)
        out += [f"## Summary (training: {cond})", "",
                f"Clean test accuracy (%) on each dataset, mean over seeds (✓: not significantly worse than the "
                f"best there); mean rank over the {len(datasets)} datasets (1 = best); missing: the `missing` "
                "family's mean accuracy, averaged over the datasets.", "",
                "| method | mean rank | " + " | ".join(datasets) + " | missing (%) |",
                "|" + "---|" * (len(datasets) + 3)]
        for method in ranks.sort_values(kind="stable").index:
            cells = [f"{acc.loc[method, d] * 100:.1f}" + (" ✓" if (d, cond, "clean", method) in marks else "")
                     if np.isfinite(acc.loc[method, d]) else "—" for d in datasets]
            out.append(f"| {method} | {ranks[method]:.2f} | " + " | ".join(cells) + f" | {missing[method] * 100:.1f} |")
        out.append("")
    return out


def write_leaderboard(records: list[dict[str, Any]], out_dir: Path, suite: str,
                      baseline: str | None = None, rule: str = DEFAULT_RULE) -> pd.DataFrame:
    """Select one hyperparameter draw per method with ``rule`` (a query over the records), then write
    the tables, the statistics, the claims scorecard and the HTML page. With several draws, an
    oracle-selected table (test data) is written apart."""
    from benchmark import claims, html_page
    from benchmark.stat_report import write_statistics
    from benchmark.statistics import long_table, not_worse_than_best, pairwise_tests

    selected, chosen = select(records, rule)
    spread = tuning_spread(records)
    table = _with_tuning(build_table(selected, baseline), chosen, spread, rule)
    long = long_table(selected)
    pairwise = pairwise_tests(long, baseline)
    marks = not_worse_than_best(pairwise, long)
    if not table.empty:
        table["not_worse_than_best"] = [(d, c, "clean", m) in marks for d, c, m in
                                        zip(table["dataset"], table["train_condition"], table["method"], strict=True)]
    failed = [f"{r['spec']['method']} on {r['spec']['dataset']} seed {r['spec']['seed']}: "
              f"{r.get('error', {}).get('type', '')}: {r.get('error', {}).get('message', '')}"
              for r in selected if r.get("status") != "ok"]
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "leaderboard.csv", index=False, float_format="%.6g")
    md = to_markdown(table, suite, failed, baseline, rule, marks)
    if any(n > 1 for n, _ in spread.values()):
        oracle_records, oracle_chosen = select(records, "oracle_test")
        oracle = _with_tuning(build_table(oracle_records, baseline), oracle_chosen, spread, "oracle_test")
        oracle.to_csv(out_dir / "leaderboard_oracle.csv", index=False, float_format="%.6g")
        (out_dir / "leaderboard_oracle.md").write_text(
            to_markdown(oracle, suite, [], baseline, "oracle_test").replace(
                "# Leaderboard:", "# NOT A LEADERBOARD (oracle selection on test data):", 1))
        md += "\nAn oracle selection on test data, for reference only, is in `leaderboard_oracle.md`.\n"
    (out_dir / "leaderboard.md").write_text(md)
    write_statistics(long, selected, pairwise, baseline, out_dir)
    present = {r["spec"]["method"] for r in selected}
    written = {c.method for c in claims.CLAIMS}
    (out_dir / "claims.md").write_text(claims.to_markdown(claims.scorecard(selected, present, long), suite,
                                                          sorted(present - written)))
    if not table.empty:
        (out_dir / "leaderboard.html").write_text(
            html_page.render(table, long, marks, COLUMNS, selected, suite, rule, out_dir))
    return table


def _with_tuning(table: pd.DataFrame, chosen: dict, spread: dict, rule: str) -> pd.DataFrame:
    if table.empty:
        return table
    keys = list(zip(table["method"], table["dataset"], table["train_condition"], strict=True))
    table = table.copy()
    table["selection_rule"] = rule
    table["draw_selected"] = [chosen.get(k, 0) for k in keys]
    table["draws"] = [spread.get(k, (1, 0.0))[0] for k in keys]
    table["tuning_spread_clean_accuracy"] = [spread.get(k, (1, 0.0))[1] for k in keys]
    return table


README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def _relative(path: Path, readme: Path) -> str:
    try:
        return path.resolve().relative_to(readme.resolve().parent).as_posix()
    except ValueError:
        return path.name


def update_readme(readme: Path, board: Path) -> None:
    """Replace the README's block between the leaderboard markers with the generated tables (headings
    demoted one level, so they nest under the README's section): the summary only, when the
    leaderboard has one (several datasets), with a pointer to the per-dataset tables."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block to replace")
    board_text = board.read_text()
    summary = board_text.split(SUMMARY_END, 1)[0]
    if "## Summary" in summary:
        board_text = summary + (
            f"Per dataset (every column with its interval, robustness, failures): `{_relative(board, readme)}`.\n")
    body = "\n".join("#" + line if line.startswith("#") else line for line in board_text.splitlines()[1:])
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body.strip()}\n{README_END}{tail}")
