"""Only checked methods enter a board: check-method's leakage check, and ``run`` refusing a method that
fails any check at its current source (once per source; ``--skip-check`` overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TEST_PLUGINS, run_cli, write_suite

LEAKY = TEST_PLUGINS / "leaky_methods.py"


@pytest.mark.parametrize("name", ["leaks_via_registry", "leaks_via_frames", "leaks_via_gc"])
def test_the_leakage_check_catches_each_route_to_the_labels(name: str) -> None:
    from benchmark import registry
    from benchmark.leakage import leakage_check

    registry.add_method_file(LEAKY)
    result = leakage_check(registry.get("method", name).cls)
    assert result.status == "ok" and result.leaks and result.accuracy == 1.0


@pytest.mark.parametrize("name", ["early_fusion", "late_fusion", "gmm_adaptive"])
def test_honest_methods_stay_below_the_bound(name: str) -> None:
    from benchmark import registry
    from benchmark.leakage import leakage_check

    result = leakage_check(registry.get("method", name).cls)
    assert result.status == "ok" and not result.leaks, result
    assert result.chance <= result.bound < 0.5


def test_check_method_names_the_leak_and_the_fix() -> None:
    done = run_cli("check-method", str(LEAKY))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    fails = [line for line in done.stdout.splitlines() if "FAIL  no access to labels it must not see" in line]
    assert len(fails) == 3 and all("reads labels it must not see" in f for f in fails), done.stdout


@pytest.mark.parametrize(("plugin", "method", "check"), [
    ("leaky_methods.py", "leaks_via_frames", "no access to labels it must not see"),
    ("hostile_methods.py", "mutates_in_predict", "inputs left as they were"),
    ("nondeterministic_methods.py", "nondeterministic", "determinism given the seed"),
    ("broken_methods.py", "returns_nan", "valid probabilities"),
    ("broken_methods.py", "raises_in_fit", "smoke run"),
    ("exiting_methods.py", "exits_in_fit", "check-method"),  # checked in a child: run itself survives
])
def test_run_refuses_a_method_that_fails_a_check_before_training_anything(
        tmp_path: Path, plugin: str, method: str, check: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion", method])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   "--method-file", str(TEST_PLUGINS / plugin))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"method {method}" in done.stderr and f"'{check}'" in done.stderr and "--skip-check" in done.stderr
    assert not list((tmp_path / "res").glob("runs/*.json"))  # nothing trained, not even the honest method


def test_checks_run_once_per_source_and_skip_check_overrides(tmp_path: Path) -> None:
    checks = {"BENCHMARK_CHECKS": str(tmp_path / "checks")}
    suite = write_suite(tmp_path, ["early_fusion"])
    first = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "a"), "--no-progress", extra_env=checks)
    assert first.returncode == 0 and "checking method early_fusion" in first.stderr, first.stderr
    again = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "b"), "--no-progress", extra_env=checks)
    assert again.returncode == 0 and "checking method" not in again.stderr
    # A changed source is checked again: a copy of a hostile file, edited.
    copy = tmp_path / "nondet.py"
    copy.write_text((TEST_PLUGINS / "nondeterministic_methods.py").read_text())
    (tmp_path / "h").mkdir()
    hostile = write_suite(tmp_path / "h", ["nondeterministic"])
    refused = run_cli("run", "--suite", str(hostile), "--results", str(tmp_path / "c"), "--no-progress",
                      "--method-file", str(copy), extra_env=checks)
    assert refused.returncode == 2 and "checking method nondeterministic" in refused.stderr
    copy.write_text(copy.read_text() + "\n# edited\n")
    edited = run_cli("run", "--suite", str(hostile), "--results", str(tmp_path / "d"), "--no-progress",
                     "--method-file", str(copy), extra_env=checks)
    assert edited.returncode == 2 and "checking method nondeterministic" in edited.stderr
    skipped = run_cli("run", "--suite", str(hostile), "--results", str(tmp_path / "e"), "--no-progress",
                      "--skip-check", "--method-file", str(copy), extra_env=checks)
    assert skipped.returncode == 0 and list((tmp_path / "e").glob("runs/*.json")), skipped.stderr
