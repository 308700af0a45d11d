"""Shared fixtures. Tests keep their prepared data and results in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_PLUGINS = Path(__file__).parent / "plugins_for_tests"

TINY_SUITE = """
name = "tiny"
description = "two methods, a small synthetic set, two epochs"
methods = {methods}
datasets = ["synthetic_pid"]
seeds = {seeds}
test_conditions = ["clean", "missing_modality[*]", "random_missing[0.3]"]

[budget]
max_epochs = 2
patience = 2
width = 16

[dataset_params.synthetic_pid]
n = 300
"""


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHMARK_DATA", str(tmp_path_factory.getbasetemp() / "data"))
    # The session's own check verdicts: the first sweep checks each method once, the others reuse it.
    monkeypatch.setenv("BENCHMARK_CHECKS", str(tmp_path_factory.getbasetemp() / "checks"))


def write_suite(folder: Path, methods: list[str], seeds: list[int] = (0,)) -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY_SUITE.format(methods=list(methods).__repr__().replace("'", '"'), seeds=list(seeds)))
    return path


def run_cli(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m benchmark ...`` in a fresh process, as a user would run it."""
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


RUNNER_SUITE = """
name = "runner"
description = "what the runner writes, for the tests of everything that reads records back"
methods = ["early_fusion", "late_fusion", "raises_in_fit"]
datasets = [{{name = "synthetic_pid", n = 300, n_modalities = 2, noise = [0.6, 1.0]}},
            {{name = "synthetic_pid", n = 300, n_modalities = 3}}]
seeds = [0, 1, 2]
robustness_baseline = "late_fusion"
test_conditions = ["clean", "missing_modality[*]", "missing_pattern[*]", "random_missing[0.1]",
                   "random_missing[0.2]", "random_missing[0.5]", "random_missing[0.9]"]

[budget]
max_epochs = 2
patience = 2
width = 16
"""


@pytest.fixture(scope="session")
def runner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder written by the runner itself (``python -m benchmark run``): two methods and one that
    raises in ``fit``, on two variants of synthetic_pid, 3 seeds. Tests that read records back start from
    it, so they read exactly what the runner writes; copy it before changing anything in it."""
    folder = tmp_path_factory.mktemp("runner")
    suite = folder / "runner.toml"
    suite.write_text(RUNNER_SUITE.format())
    env = {"BENCHMARK_DATA": str(tmp_path_factory.getbasetemp() / "data")}
    done = run_cli("run", "--suite", str(suite), "--results", str(folder), "--no-progress", "--skip-check",
                   "--method-file", str(TEST_PLUGINS / "broken_methods.py"), extra_env=env, timeout=600)
    assert done.returncode == 1 and "raises_in_fit" in done.stdout, done.stdout + done.stderr  # the failing method
    return folder


@pytest.fixture()
def runner_results(runner_folder: Path):
    """The runner's folder loaded with ``benchmark.results.load`` (a fresh object per test)."""
    from benchmark.results import load, suite_scope

    scope = suite_scope(str(runner_folder / "runner.toml"), runner_folder)
    return load(runner_folder, scope)
