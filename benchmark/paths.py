"""Where the suite's folders are (never absolute paths in code or records).

Two layouts, told apart by where this file lies:

- **a checkout** (this package beside ``pyproject.toml``, ``methods/`` and ``datasets/``, also after
  ``pip install -e .``): the built-in plug-ins, the figure scripts and ``results/`` are the checkout's
  own folders, whatever the working directory;
- **an installed package** (``pip install .`` or a wheel): the built-in plug-ins and figure scripts
  ship inside the package (``benchmark/_builtin/``, read only), while results, user plug-in folders
  (``./methods``, ``./datasets``) and claims pages are found in the *project folder*: the working
  directory, or ``$BENCHMARK_HOME``. Nothing is ever written inside site-packages.

The prepared-data store and the check verdicts live in the user's cache folder in both layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _is_checkout(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "methods").is_dir() and (root / "datasets").is_dir()


#: True for an installed copy (no checkout around the package).
INSTALLED = not _is_checkout(PACKAGE_DIR.parent)
#: Where the built-in ``methods/``, ``datasets/`` and ``paper_figures/`` scripts are: the checkout, or the
#: installed package's ``_builtin`` folder (pyproject.toml maps the top-level folders there in a wheel).
BUILTIN_ROOT = PACKAGE_DIR / "_builtin" if INSTALLED else PACKAGE_DIR.parent
#: The project folder, which suites' ``results`` keys are relative to: the checkout, or for an installed
#: copy ``$BENCHMARK_HOME`` or the working directory the command started in.
REPO_ROOT = (Path(os.environ.get("BENCHMARK_HOME") or Path.cwd()).resolve() if INSTALLED
             else PACKAGE_DIR.parent)
#: The figure scripts (``fig_*.py``); in a checkout also where the full suite's figures are drawn.
FIGURES_DIR = BUILTIN_ROOT / "paper_figures"
#: Starting points for a new plug-in, copied by users: ``python -m benchmark template KIND DEST``.
TEMPLATES_DIR = PACKAGE_DIR / "templates"


def suite_figures_dir(results: Path) -> Path:
    """Where a suite's figures go: ``RESULTS/figures``, so that drawing one suite never overwrites another's;
    for the committed full suite of a checkout (``results/``), ``paper_figures/``, beside the scripts.
    Never inside an installed package."""
    if not INSTALLED and Path(results).resolve() == (REPO_ROOT / "results").resolve():
        return FIGURES_DIR
    return Path(results) / "figures"


def methods_dirs() -> list[Path]:
    """The plug-in folders for methods: the built-in ``methods/``, an installed copy's ``./methods`` of the
    project folder, and any folder in ``BENCHMARK_METHODS_PATH``."""
    return _unique([BUILTIN_ROOT / "methods", *_project("methods"), *_extra("BENCHMARK_METHODS_PATH")])


def datasets_dirs() -> list[Path]:
    """The plug-in folders for dataset loaders, found as ``methods_dirs`` finds methods'."""
    return _unique([BUILTIN_ROOT / "datasets", *_project("datasets"), *_extra("BENCHMARK_DATASETS_PATH")])


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


def _project(name: str) -> list[Path]:
    """An installed copy's user plug-in folder in the project folder, where it exists (a checkout's own
    folders are the built-in ones)."""
    folder = REPO_ROOT / name
    return [folder] if INSTALLED and folder.is_dir() else []


def _extra(var: str) -> list[Path]:
    return [Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p]


def _unique(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if all(p.resolve() != q.resolve() for q in out):
            out.append(p)
    return out
