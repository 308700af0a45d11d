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
