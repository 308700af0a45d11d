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


def write_suite(folder: Path, methods: list[str], seeds: list[int] = (0,)) -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY_SUITE.format(methods=list(methods).__repr__().replace("'", '"'), seeds=list(seeds)))
    return path


def run_cli(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m benchmark ...`` in a fresh process, as a user would run it."""
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
