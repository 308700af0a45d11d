"""Robustness summaries of each run, from the tidy results table: the severity-averaged accuracy of each
accuracy-versus-severity curve on the grid that was actually run, MultiBench's relative robustness and
the sums its effective robustness is made of, and the worst condition.

- Curve: the conditions of one protocol that differ only in severity (``gaussian_noise[pixels,*]``),
  with the clean accuracy at severity 0 as its first point. A family's value is the mean over its curves.
- Severity-averaged accuracy (``sevavg_<family>``): the trapezoid area under the curve on the actual
  severities divided by the grid's width, i.e. the curve's mean height, in accuracy units (formerly
  called a "normalised area"; it is neither MultiBench's relative nor its effective robustness).
- Relative robustness (``rr_<family>``), as MultiBench's ``eval_scripts/robustness.py`` computes it
  (``relative_robustness_helper``): the trapezoid sum of the curve with a fixed step of 0.1 between
  consecutive levels, sum (a_i + a_{i+1}) * 0.1 / 2, whatever the actual severities. It grows with the
  number of levels, so it compares methods on one grid only (within one table).
- Effective robustness (``er_<family>``, in ``benchmark.leaderboard.per_run``), as MultiBench's
  ``effective_robustness_helper`` computes it against the baseline b (MultiBench's is late fusion):
  sum over the levels of f_i - (b_i + f_0 - b_0), i.e. ``erbase_m - erbase_b`` with ``erbase`` = sum of
  (a_i - a_0) over the curve's levels; the baseline's run of the same seed, paired. MultiBench's own
  tables then max-min normalise both quantities across the methods of a task; the values here are the
  helpers' raw values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.grouped import Grouped, sorted_codes

#: MultiBench's step between consecutive severity levels in its relative robustness.
MULTIBENCH_STEP = 0.1


def severity_averaged_accuracy(severity: np.ndarray, accuracy: np.ndarray) -> float:
    """The curve's mean height over its severity range: trapezoid area / the range's width."""
    width = severity.max() - severity.min()
    return float(np.trapezoid(accuracy, severity) / width) if width > 0 else float(accuracy.mean())


#: The former name of ``severity_averaged_accuracy`` (tests/test_leaderboard.py still imports it).
normalised_area = severity_averaged_accuracy


def multibench_relative_robustness(accuracy: np.ndarray) -> float:
    """MultiBench's ``relative_robustness_helper``: the trapezoid sum of the curve (clean first, then the
    levels in order of severity) with a step of 0.1 between consecutive levels."""
    a = np.asarray(accuracy, dtype=float)
    return float(np.sum((a[:-1] + a[1:]) * MULTIBENCH_STEP / 2))


def multibench_effective_robustness(accuracy: np.ndarray, baseline: np.ndarray) -> float:
    """MultiBench's ``effective_robustness_helper``: sum of f - (b + f[0] - b[0]) over the levels (clean
    first), the accuracy f keeps beyond the baseline b's curve shifted to f's clean accuracy."""
    f, b = np.asarray(accuracy, dtype=float), np.asarray(baseline, dtype=float)
    return float(np.sum(f - (b + (f[0] - b[0]))))


def run_summaries(table: pd.DataFrame) -> pd.DataFrame:
    """Per run (index run_id): ``sevavg_<family>``, ``rr_<family>`` (with ``rrmax_<family>``, its value at
    accuracy 1: its upper bound) and ``erbase_<family>`` for every family with curves, the worst non-clean
    condition and its accuracy (ties: the first condition key in sorted order). Computed for every run at
    once: each curve's points sorted by (severity, accuracy) with the clean point first at 0, its
    severity-averaged accuracy, MultiBench's trapezoid sum and its sum of drops from the clean point, and
    the curves' mean per family."""
    acc = table[(table["split"] == "test") & (table["metric"] == "accuracy")]
    # Runs, conditions, families and curves as codes in their strings' sorted order: sorting and grouping
    # by them is sorting and grouping by the strings, without a string per row.
    run, run_ids = sorted_codes(acc["run_id"])
    cond, conditions = sorted_codes(acc["condition"])
    value = acc["value"].to_numpy(float)
    severity = acc["severity"].to_numpy(float)
    is_clean = conditions[cond] == "clean" if len(cond) else np.zeros(0, dtype=bool)
    clean = pd.Series(value[is_clean], index=run[is_clean])
    present = np.unique(run)
    out = pd.DataFrame(index=pd.Index(run_ids[present].tolist(), name="run_id"))
    on_curve = np.isfinite(severity)
    if on_curve.any():
        family, families = sorted_codes(acc["family"])
        curve_code = sorted_codes(acc["curve"])[0]
        pts = pd.DataFrame({"run_id": run[on_curve], "family": family[on_curve], "curve": curve_code[on_curve],
                            "severity": severity[on_curve], "value": value[on_curve]})
        pts["level"] = 1
        origin = pts.drop_duplicates(["run_id", "family", "curve"]).assign(severity=0.0, level=0)
        origin["value"] = clean.reindex(origin["run_id"]).to_numpy()
        pts = pd.concat([pts, origin])
        # Sorted by (run, family, curve, severity, clean first, value), stably (np.lexsort: the last key first).
        order = np.lexsort([pts[c].to_numpy() for c in ("value", "level", "severity", "curve", "family", "run_id")])
        keys = pts[["run_id", "family", "curve"]].to_numpy()[order]
        s, a = pts["severity"].to_numpy()[order], pts["value"].to_numpy()[order]
        new_curve = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
        curve = np.cumsum(new_curve) - 1
        # Each curve's trapezoids summed in order from 0, as np.trapezoid sums fewer than 9 of them (bit for
        # bit the same areas, so printed roundings never depend on how the sum was taken).
        pieces = np.diff(s) * (a[1:] + a[:-1]) / 2.0
        inside = curve[1:] == curve[:-1]
        area = np.bincount(curve[1:][inside], weights=pieces[inside], minlength=curve[-1] + 1)
        starts = np.flatnonzero(new_curve)
        stops = np.r_[starts[1:], len(s)]
        width = s[stops - 1] - s[starts]  # sorted by severity: last minus first
        heights = Grouped(curve, len(starts)).mean(a)
        norm = np.where(width > 0, area / np.where(width > 0, width, 1.0), heights)
        # np.trapezoid sums the trapezoids of a longer curve pairwise (np.add.reduce), as each row of a
        # matrix of such curves is summed: the areas of curves of more than 9 points, bit for bit.
        long_curves = (stops - starts > 9) & (width > 0)
        if long_curves.any():
            piece_curve = np.where(inside & long_curves[curve[1:]], curve[1:], -1)
            kept = piece_curve >= 0
            sums = Grouped(piece_curve[kept], len(starts)).reduce(pieces[kept], lambda m: np.add.reduce(m, axis=1))
            norm[long_curves] = sums[long_curves] / width[long_curves]
        # MultiBench: the trapezoids with a step of 0.1, and each level's drop from the clean (first) point.
        relative = np.bincount(curve[1:][inside], weights=((a[1:] + a[:-1]) * MULTIBENCH_STEP / 2)[inside],
                               minlength=len(starts))
        drops = np.bincount(curve, weights=a - a[starts][curve], minlength=len(starts))
        # The mean of the curves' values per (run, family), np.mean's over each group.
        run_family = keys[starts][:, :2]
        new_group = np.r_[True, (run_family[1:] != run_family[:-1]).any(axis=1)]
        first = np.flatnonzero(new_group)
        by_family = Grouped(np.cumsum(new_group) - 1, len(first))
        index = pd.MultiIndex.from_arrays([run_ids[run_family[first, 0]], families[run_family[first, 1]]])
        most = MULTIBENCH_STEP * (stops - starts - 1)  # the relative robustness of a curve at accuracy 1
        for prefix, per_curve in (("sevavg", norm), ("rr", relative), ("rrmax", most), ("erbase", drops)):
            wide = pd.Series(by_family.mean(per_curve), index=index).unstack()
            out = out.join(wide.rename(columns=lambda f, prefix=prefix: f"{prefix}_{f}"))
    # Each run's lowest accuracy off the clean condition (ties: the first condition key in sorted order).
    shifted = np.flatnonzero(~is_clean)
    shifted = shifted[np.lexsort((cond[shifted], value[shifted], run[shifted]))]
    first = np.r_[True, run[shifted][1:] != run[shifted][:-1]] if len(shifted) else np.zeros(0, dtype=bool)
    worst = shifted[first]
    worst = pd.DataFrame({"value": value[worst], "condition": conditions[cond[worst]]},
                         index=pd.Index(run_ids[run[worst]], name="run_id"))
    out["worst_accuracy"] = worst["value"]
    out["worst_condition"] = worst["condition"]
    return out
