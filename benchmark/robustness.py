"""Robustness summaries from one run's metrics: the area under each accuracy-versus-severity curve on
the grid that was actually run, the worst condition, and MultiBench's relative and effective robustness
against a baseline that the suite names.

- A curve is one protocol with its other parameters fixed (e.g. ``gaussian_noise`` on ``pixels``),
  with the clean accuracy at severity 0. Its area is the trapezoid rule over the severities present,
  divided by the grid's width (so it is a mean accuracy, comparable across grids).
- Relative robustness of a family = the mean normalised area of its curves.
- Effective robustness vs baseline b = the area of (acc(s) - acc(0)) minus the baseline's: the accuracy
  a method keeps beyond what b keeps, after equalising clean accuracy. Computed per seed, paired.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from typing import Any

import numpy as np

from benchmark.protocols import PROTOCOLS, Condition


def curves(record: dict[str, Any]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(family, curve name) -> (severities, accuracies), clean included at severity 0."""
    metrics = record["metrics"]
    clean = metrics.get("clean", {}).get("accuracy", math.nan)
    points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for key, m in metrics.items():
        if m.get("severity") is None:
            continue
        points[_curve_of(key)].append((float(m["severity"]), m["accuracy"]))
    out = {}
    for name, pts in points.items():
        pts = sorted([(0.0, clean), *pts])
        sev, acc = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
        out[name] = (sev, acc)
    return out


@functools.cache
def _curve_of(key: str) -> tuple[str, str]:
    """(family, curve name) of a condition key: the protocol with its parameters other than severity.
    Cached: every record of a suite repeats the same keys, and parsing them dominated a rebuild."""
    cond = Condition.parse(key)
    proto = PROTOCOLS[cond.protocol]
    full = proto.full_args(cond.args)
    others = [str(a) for p, a in zip(proto.params, full, strict=True) if p.name != proto.severity_param]
    return proto.family, f"{cond.protocol}[{','.join(others)}]"


def normalised_area(severity: np.ndarray, accuracy: np.ndarray) -> float:
    width = severity.max() - severity.min()
    return float(np.trapezoid(accuracy, severity) / width) if width > 0 else float(accuracy.mean())


def summarize(record: dict[str, Any]) -> dict[str, float | str]:
    """``auc_<family>`` per family with curves, and the worst non-clean condition."""
    by_family: dict[str, list[float]] = defaultdict(list)
    for (family, _), (sev, acc) in curves(record).items():
        by_family[family].append(normalised_area(sev, acc))
    out: dict[str, float | str] = {f"auc_{fam}": float(np.mean(v)) for fam, v in sorted(by_family.items())}
    shifted = {k: m["accuracy"] for k, m in record["metrics"].items() if k != "clean"}
    if shifted:
        worst = min(shifted, key=shifted.get)
        out["worst_accuracy"], out["worst_condition"] = shifted[worst], worst
    return out


def effective_robustness(method: dict[str, Any], baseline: dict[str, Any],
                         summaries: tuple[dict, dict] | None = None) -> dict[str, float]:
    """``er_<family>``: (area - clean) of the method minus that of the baseline, same seed and grid.
    ``summaries`` passes their ``summarize`` results when the caller has them already."""
    sm, sb = summaries or (summarize(method), summarize(baseline))
    cm, cb = method["metrics"]["clean"]["accuracy"], baseline["metrics"]["clean"]["accuracy"]
    return {f"er_{k[4:]}": (float(sm[k]) - cm) - (float(sb[k]) - cb)
            for k in sm if k.startswith("auc_") and k in sb}
