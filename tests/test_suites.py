"""A suite's default results folder keeps suites from overwriting each other's tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_suite

from benchmark.paths import REPO_ROOT
from benchmark.suites import load_suite


def test_each_suite_defaults_to_its_own_folder_and_full_to_the_committed_one() -> None:
    assert load_suite("quick").results_dir == REPO_ROOT / "results" / "quick"
    assert load_suite("full").results_dir == REPO_ROOT / "results"
    folders = {load_suite(name).results_dir for name in ("quick", "full", "smoke", "tuned", "scaling")}
    assert len(folders) == 5


@pytest.mark.parametrize("bad", ['"/tmp/elsewhere"', '"../outside"', "3"])
def test_a_results_folder_outside_the_checkout_is_refused_with_the_fix(tmp_path: Path, bad: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    suite.write_text(f"results = {bad}\n" + suite.read_text())
    with pytest.raises(ValueError, match="results must be a folder inside the checkout"):
        load_suite(str(suite))


def test_the_committed_full_leaderboard_covers_every_method_and_dataset_with_five_seeds() -> None:
    import json

    import pandas as pd

    # The suite's own methods and datasets (DESIGN.md's names); a newly added method file is not required
    # to be in the committed board before someone runs the full suite with it.
    methods = ["conformal_shapley", "early_fusion", "ef_dro", "gmm_adaptive", "late_fusion", "mm_dro", "robult"]
    datasets = ["caravan", "cells", "leaf", "mfeat", "satellite", "segment", "synthetic_pid"]
    suite = load_suite("full")
    seeds: dict[tuple[str, str, str], set[int]] = {}
    for path in (suite.results_dir / "runs").glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["status"] == "ok":
            s = rec["spec"]
            seeds.setdefault((s["method"], s["dataset"], s["train_condition"]), set()).add(s["seed"])
    wanted = {(m, d, c) for m in methods for d in datasets for c in suite.training_conditions}
    assert wanted <= set(seeds), sorted(wanted - set(seeds))
    assert all(len(seeds[k]) >= 5 for k in wanted), {k: len(seeds[k]) for k in wanted if len(seeds[k]) < 5}
    board = pd.read_csv(suite.results_dir / "leaderboard.csv")
    assert {(r.method, r.dataset, r.train_condition) for r in board.itertuples()} >= wanted
    assert (board["seeds_ok"] >= 5).all() and (board["seeds_failed"] == 0).all()


VARIANT_SUITE = """
name = "variants"
description = "a base method and a variant of it"
methods = ["early_fusion"]
variants = [{name = "early_fusion", mask_as_input = false, label = "early_fusion-nomask"}]
datasets = [{name = "synthetic_pid", n = 300}]
seeds = [0]
test_conditions = ["clean", "missing_modality[*]"]

[budget]
max_epochs = 2
width = 16
"""


def test_a_variant_runs_beside_its_base_method_under_its_own_label(tmp_path: Path) -> None:
    from conftest import run_cli

    from benchmark.results import load, suite_scope

    suite = tmp_path / "variants.toml"
    suite.write_text(VARIANT_SUITE)
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 0, done.stderr
    results = load(tmp_path / "res", suite_scope(str(suite), tmp_path / "res"))
    rows = {r.method: r for r in results.records}
    assert set(rows) == {"early_fusion", "early_fusion-nomask"}
    variant = rows["early_fusion-nomask"]
    assert variant.spec.method == "early_fusion" and variant.spec.hparams["mask_as_input"] is False
    assert variant.body["hparams"]["mask_as_input"] is False and rows["early_fusion"].body["hparams"]["mask_as_input"]
    assert variant.run_id != rows["early_fusion"].run_id and variant.path.name.startswith("early_fusion-nomask__")
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "| early_fusion-nomask |" in board and "| early_fusion |" in board
    table = results.table
    assert set(table.loc[table["method"] == "early_fusion-nomask", "base_method"]) == {"early_fusion"}
    listed = run_cli("list", "suites")
    assert listed.returncode == 0


@pytest.mark.parametrize(("variant", "message"), [
    ('{name = "early_fusion", mask_as_input = "maybe", label = "x"}', "mask_as_input"),
    ('{name = "early_fusion", no_such_thing = 1, label = "x"}', "no_such_thing"),
    ('{name = "early_fusion", mask_as_input = false}', "needs a name and a label"),
    ('{name = "early_fusion", mask_as_input = false, label = "early_fusion"}', "appear twice"),
    ('{name = "early_fusion", mask_as_input = false, label = "../x"}', "letters, digits"),
    ('{name = "no_method", label = "x"}', "no method named"),
])
def test_a_wrong_variant_is_refused_before_anything_trains(tmp_path: Path, variant: str, message: str) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text(VARIANT_SUITE.replace(
        'variants = [{name = "early_fusion", mask_as_input = false, label = "early_fusion-nomask"}]',
        f"variants = [{variant}]"))
    with pytest.raises((ValueError, KeyError), match=message):
        load_suite(str(suite))


def test_list_methods_prints_each_hyperparameter_with_its_default_source_and_space() -> None:
    from conftest import run_cli

    done = run_cli("list", "methods")
    assert done.returncode == 0, done.stderr
    assert "robult (robult.py)" in done.stdout and "mask_as_input = True" in done.stdout
    assert "[INF]" in done.stdout and "[SRC]" in done.stdout and "space:" in done.stdout


def test_param_budget_sets_each_methods_width_to_match_the_budget_and_records_it(tmp_path: Path) -> None:
    from conftest import run_cli

    from benchmark.results import load

    suite = write_suite(tmp_path, ["early_fusion", "late_fusion", "robult"])
    suite.write_text("param_budget = 12000\n" + suite.read_text())
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 0, done.stderr
    records = load(tmp_path / "res").ok
    widths = {r.method: r.spec.budget["width"] for r in records}
    assert len(set(widths.values())) == 3, widths  # each its own width
    for r in records:
        assert abs(r.body["n_parameters"] - 12000) <= 0.15 * 12000, (r.method, r.body["n_parameters"])
    suite.write_text(suite.read_text().replace("param_budget = 12000", "param_budget = -3"))
    with pytest.raises(ValueError, match="param_budget"):
        load_suite(str(suite))
