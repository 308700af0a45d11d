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
