"""Robustness summaries of each run, from the tidy results table: the area under each accuracy-versus-
severity curve on the grid that was actually run, the worst condition, and effective robustness against
a baseline that the suite names.

- Curve: the conditions of one protocol that differ only in severity (``gaussian_noise[pixels,*]``),
  with the clean accuracy at severity 0; its area is normalised by the grid's width (the mean height of
  the curve, in accuracy units). A family's area is the mean over its curves.
- Effective robustness of a method m against a baseline b, per family: (area_m - clean_m) minus
  (area_b - clean_b), the accuracy m keeps beyond what b keeps after equalising clean accuracy;
  computed per seed, paired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.grouped import Grouped, sorted_codes


def normalised_area(severity: np.ndarray, accuracy: np.ndarray) -> float:
    width = severity.max() - severity.min()
    return float(np.trapezoid(accuracy, severity) / width) if width > 0 else float(accuracy.mean())


def run_summaries(table: pd.DataFrame) -> pd.DataFrame:
    """Per run (index run_id): ``auc_<family>`` for every family with curves, the worst non-clean
    condition and its accuracy (ties: the first condition key in sorted order). Computed for every run
    at once: each curve's points sorted by (severity, accuracy) with the clean point at 0, its normalised
    area, and the curves' mean per family."""
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
        origin = pts.drop_duplicates(["run_id", "family", "curve"]).assign(severity=0.0)
        origin["value"] = clean.reindex(origin["run_id"]).to_numpy()
        pts = pd.concat([pts, origin])
        # Sorted by (run, family, curve, severity, value), stably (np.lexsort: the last key first).
        order = np.lexsort([pts[c].to_numpy() for c in ("value", "severity", "curve", "family", "run_id")])
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
        # The mean of the curves' areas per (run, family), np.mean's over each group.
        run_family = keys[starts][:, :2]
        new_group = np.r_[True, (run_family[1:] != run_family[:-1]).any(axis=1)]
        first = np.flatnonzero(new_group)
        means = Grouped(np.cumsum(new_group) - 1, len(first)).mean(norm)
        index = pd.MultiIndex.from_arrays([run_ids[run_family[first, 0]], families[run_family[first, 1]]])
        auc = pd.Series(means, index=index).unstack()
        out = out.join(auc.rename(columns=lambda f: f"auc_{f}"))
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


def effective_robustness(method: pd.Series, baseline: pd.Series) -> dict[str, float]:
    """``er_<family>`` of one run against the baseline's run of the same seed (rows of ``per_run``)."""
    out = {}
    for k in method.index:
        if k.startswith("auc_") and k in baseline.index and pd.notna(method[k]) and pd.notna(baseline[k]):
            out[f"er_{k[4:]}"] = ((float(method[k]) - method["clean_accuracy"])
                                  - (float(baseline[k]) - baseline["clean_accuracy"]))
    return out
