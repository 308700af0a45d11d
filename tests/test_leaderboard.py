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


def graded_record(method: str, clean: float, curve: dict[float, float], seed: int = 0) -> dict:
    metrics = {"clean": {"accuracy": clean, "ece": 0.0, "family": "clean", "severity": None}}
    for rate, acc in curve.items():
        metrics[f"random_missing[{rate}]"] = {"accuracy": acc, "family": "missing", "severity": rate}
    return {"spec": {"method": method, "dataset": "toy", "train_condition": "standard", "seed": seed},
            "status": "ok", "metrics": metrics,
            "timings": {"fit_seconds": 1.0, "inference_seconds_per_sample": 1e-5}}


def test_area_uses_the_actual_uneven_grid_and_is_normalised_by_its_width() -> None:
    from benchmark.robustness import normalised_area, summarize

    # Accuracy 1 at 0, falling linearly to 0 at 0.9, sampled unevenly: the area is exactly 0.5.
    rates = [0.1, 0.2, 0.5, 0.9]
    rec = graded_record("m", 1.0, {r: 1 - r / 0.9 for r in rates})
    assert np.isclose(summarize(rec)["auc_missing"], 0.5)
    # Treating the four points as evenly spaced (the grid mistake) would give another number.
    accs = np.array([1.0] + [1 - r / 0.9 for r in rates])
    assert not np.isclose(normalised_area(np.arange(5.0), accs), 0.5)
    assert summarize(rec)["worst_condition"] == "random_missing[0.9]"


def test_effective_robustness_is_zero_against_itself_and_equalises_clean_accuracy() -> None:
    from benchmark.robustness import effective_robustness

    base = graded_record("base", 0.9, {0.5: 0.7, 1.0: 0.5})
    # Same drop as the baseline from a lower clean accuracy: effective robustness 0.
    shifted = graded_record("m", 0.8, {0.5: 0.6, 1.0: 0.4})
    assert np.isclose(effective_robustness(base, base)["er_missing"], 0.0)
    assert np.isclose(effective_robustness(shifted, base)["er_missing"], 0.0)
    flatter = graded_record("m", 0.8, {0.5: 0.8, 1.0: 0.8})
    assert effective_robustness(flatter, base)["er_missing"] > 0.1


def test_leaderboard_table_pairs_effective_robustness_by_seed() -> None:
    recs = [graded_record("base", 0.9, {0.5: 0.7}, seed=s) for s in range(3)]
    recs += [graded_record("m", 0.9, {0.5: 0.8}, seed=s) for s in range(3)]
    table = build_table(recs, baseline="base").set_index("method")
    assert np.isclose(table.loc["m", "er_missing"], 0.05) and np.isclose(table.loc["base", "er_missing"], 0.0)
    assert "ER missing" in to_markdown(build_table(recs, "base"), "unit", [], "base")


def test_tied_worst_conditions_are_broken_the_same_way_whatever_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    code = ("from benchmark.leaderboard import build_table; import json, sys; recs = json.loads(sys.argv[1]); "
            "print(build_table(recs).loc[0, 'worst_condition'])")
    recs = [fake_record("a", 0, 0.9, [0.5, 0.8]), fake_record("a", 1, 0.9, [0.8, 0.5])]  # one worst each
    import json

    outs = {subprocess.run([sys.executable, "-c", code, json.dumps(recs)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip() for seed in range(6)}
    assert outs == {"random_missing[0]"}


def _on(dataset: str, rec: dict) -> dict:
    rec["spec"]["dataset"] = dataset
    return rec


def test_summary_ranks_methods_over_datasets_and_the_readme_gets_only_the_summary(tmp_path) -> None:
    from benchmark.leaderboard import SUMMARY_END, summary_markdown, update_readme

    accs = {"d1": {"a": 0.9, "b": 0.8, "c": 0.7}, "d2": {"a": 0.6, "b": 0.8, "c": 0.8}}
    recs = [_on(d, fake_record(m, s, acc + 0.001 * s, [acc / 2])) for d, by_m in accs.items()
            for m, acc in by_m.items() for s in range(3)]
    table = build_table(recs)
    lines = summary_markdown(table, {("d1", "standard", "clean", "a")})
    rows = {ln.split(" | ")[0][2:]: ln.split(" | ") for ln in lines if ln.startswith("| ") and "---" not in ln}
    # d1 ranks a, b, c = 1, 2, 3; d2: b and c tie for 1.5, a is 3. Mean ranks: a 2, b 1.75, c 2.25.
    assert [float(rows[m][1]) for m in ("a", "b", "c")] == [2.0, 1.75, 2.25]
    assert sum(float(rows[m][1]) for m in "abc") == 6.0  # mean ranks of 3 methods always sum to 1+2+3
    order = [ln.split(" | ")[0][2:] for ln in lines if ln.startswith("| ") and "---" not in ln][1:]
    assert order == ["b", "a", "c"]
    assert rows["a"][2] == "90.1 ✓" and rows["b"][2] == "80.1"
    assert summary_markdown(build_table([r for r in recs if r["spec"]["dataset"] == "d1"]), set()) == []

    board = tmp_path / "leaderboard.md"
    board.write_text(to_markdown(table, "unit", []))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\nrest\n")
    update_readme(readme, board)
    text = readme.read_text()
    assert "### Summary (training: standard)" in text and "## d1 (training" not in text
    assert "old" not in text and text.endswith("rest\n") and SUMMARY_END not in text


def test_variants_of_one_dataset_are_tabulated_apart_never_pooled() -> None:
    recs = []
    for n_mod, acc in ((2, 0.9), (4, 0.5)):
        for s in range(3):
            r = fake_record("a", s, acc, [acc])
            r["spec"]["dataset_params"] = {"n_modalities": n_mod}
            recs.append(r)
    table = build_table(recs).set_index("dataset")
    assert list(table.index) == ["toy[n_modalities=2]", "toy[n_modalities=4]"]
    assert table["seeds_ok"].tolist() == [3, 3] and np.isclose(table.loc["toy[n_modalities=4]", "clean_accuracy"], 0.5)
