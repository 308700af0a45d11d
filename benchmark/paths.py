"""Where the suite's folders are, relative to the checkout (never absolute paths in code or records)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where the committed full suite's paper figures are drawn.
FIGURES_DIR = REPO_ROOT / "paper_figures"


def methods_dirs() -> list[Path]:
    """The plug-in folders for methods: ``methods/`` plus any in ``BENCHMARK_METHODS_PATH``."""
    return [REPO_ROOT / "methods", *_extra("BENCHMARK_METHODS_PATH")]


def datasets_dirs() -> list[Path]:
    """The plug-in folders for dataset loaders: ``datasets/`` plus any in ``BENCHMARK_DATASETS_PATH``."""
    return [REPO_ROOT / "datasets", *_extra("BENCHMARK_DATASETS_PATH")]


def data_dir() -> Path:
    """The prepared-data store (a datalad dataset): ``$BENCHMARK_DATA`` if set, else
    ``$XDG_CACHE_HOME/robust-mm-bench`` (``~/.cache/robust-mm-bench``), where a user expects caches."""
    if "BENCHMARK_DATA" in os.environ:
        return Path(os.environ["BENCHMARK_DATA"])
    return _user_cache()


def checks_dir() -> Path:
    """Where ``run`` remembers which method sources passed ``check-method``: ``$BENCHMARK_CHECKS`` if set,
    else ``checks/`` beside the default data store. Apart from ``$BENCHMARK_DATA`` on purpose: a check is
    about a method's source, not about a data store, so a fresh store does not check every method again."""
    if "BENCHMARK_CHECKS" in os.environ:
        return Path(os.environ["BENCHMARK_CHECKS"])
    return _user_cache() / "checks"


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME/robust-mm-bench`` (``~/.cache/robust-mm-bench``), where a user expects caches."""
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "robust-mm-bench"


def _extra(var: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p]
