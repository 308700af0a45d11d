from __future__ import annotations

import numpy as np
from scipy import stats

from benchmark.leaderboard import build_table, mean_interval, to_markdown


def fake_record(method: str, seed: int, clean: float, missing: list[float], status: str = "ok") -> dict:
    metrics = {"clean": {"accuracy": clean, "ece": 0.1, "family": "clean"}}
    metrics.update({f"random_missing[{i}]": {"accuracy": a, "family": "missing"} for i, a in enumerate(missing)})
    rec = {"spec": {"method": method, "dataset": "toy", "train_condition": "standard", "seed": seed},
           "status": status, "metrics": metrics,
           "timings": {"fit_seconds": 1.0 + seed, "inference_seconds_per_sample": 1e-5}}
    if status != "ok":
        rec["error"] = {"type": "RuntimeError", "message": "boom"}
    return rec


def test_interval_is_the_student_t_interval() -> None:
    values = np.array([0.8, 0.85, 0.9])
    mean, lo, hi = mean_interval(values)
    expected = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
    assert np.isclose(mean, 0.85) and np.allclose((lo, hi), expected)
    assert np.isnan(mean_interval(np.array([0.5]))[1])


def test_table_has_mean_and_worst_missing_accuracy_and_counts_failures() -> None:
    recs = [fake_record("a", s, 0.9, [0.8, 0.6 + 0.01 * s]) for s in range(3)]
    recs.append(fake_record("a", 3, 0.0, [], status="failed"))
    recs += [fake_record("b", s, 0.7, [0.7, 0.7]) for s in range(3)]
    table = build_table(recs).set_index("method")
    assert np.isclose(table.loc["a", "missing_worst_accuracy"], 0.61)
    assert np.isclose(table.loc["a", "missing_mean_accuracy"], np.mean([0.7, 0.705, 0.71]))
    assert table.loc["a", "seeds_ok"] == 3 and table.loc["a", "seeds_failed"] == 1
    md = to_markdown(build_table(recs), "unit", ["a on toy seed 3: RuntimeError: boom"])
    assert md.index("| a |") < md.index("| b |")  # sorted by clean accuracy
    assert "3 (+1 failed)" in md and "RuntimeError: boom" in md
