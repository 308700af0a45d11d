"""Where the suite's folders are, relative to the checkout (never absolute paths in code or records)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def methods_dirs() -> list[Path]:
    """The plug-in folders for methods: ``methods/`` plus any in ``BENCHMARK_METHODS_PATH``."""
    return [REPO_ROOT / "methods", *_extra("BENCHMARK_METHODS_PATH")]


def datasets_dirs() -> list[Path]:
    """The plug-in folders for dataset loaders: ``datasets/`` plus any in ``BENCHMARK_DATASETS_PATH``."""
    return [REPO_ROOT / "datasets", *_extra("BENCHMARK_DATASETS_PATH")]


def data_dir() -> Path:
    """Prepared arrays live here (ignored by git; ``BENCHMARK_DATA`` overrides)."""
    return Path(os.environ.get("BENCHMARK_DATA", REPO_ROOT / ".data"))


def default_results_dir() -> Path:
    return REPO_ROOT / "results"


def _extra(var: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p]
