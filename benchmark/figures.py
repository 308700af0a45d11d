"""Figures: one script per figure in ``paper_figures/`` (files ``fig_*.py`` with a ``draw(results, out)``
function taking a ``benchmark.results.Results``), found by scanning the folder. They read stored records
only (the tidy table and the typed records); nothing trains and nothing re-derives a key from a string.

The results a figure gets are model-selected (one hyperparameter draw per method, dataset and training
condition). Training conditions are never pooled: a figure draws one panel set per training condition,
or the ``standard`` one (``main_condition``) and says so in its title.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from benchmark.paths import FIGURES_DIR, suite_figures_dir
from benchmark.records import RunRecord
from benchmark.results import Results
from benchmark.statistics import mean_interval

#: The training condition that a figure with one panel set draws when the results hold it.
STANDARD = "standard"
#: The training costs that figures put on an axis: label -> run quantity (a metric of split ``run``).
TRAINING_COSTS: dict[str, str] = {"training time (s)": "fit_seconds", "training FLOPs": "train_flops"}
CONFIDENCE = 0.95


class NoData(Exception):
    """The results hold nothing this figure can draw (e.g. no run of the method it is about)."""


def scripts(folder: Path = FIGURES_DIR) -> dict[str, ModuleType]:
    out = {}
    for path in sorted(folder.glob("fig_*.py")):
        spec = importlib.util.spec_from_file_location(f"benchmark_figure_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        out[path.stem] = module
    return out


def check_selected(results: Results) -> None:
    """Figures average over seeds only: results with several hyperparameter draws of one method, dataset
    and training condition must be model-selected first (benchmark.selection)."""
    runs = results.runs()
    draws = runs.groupby(["method", "dataset", "train_condition"])["draw"].nunique()
    if (draws > 1).any():
        first = draws[draws > 1].index[0]
        raise ValueError(f"{first} has {draws[first]} hyperparameter draws: select one per method, dataset and "
                         "training condition before drawing figures")


def default_out(results: Results) -> Path:
    """Where the suite of ``results`` draws its figures (``benchmark.paths.suite_figures_dir``)."""
    return suite_figures_dir(results.scope.results_dir)


def of_training_condition(results: Results, condition: str) -> Results:
    """The results of one training condition only (records and table), for a figure drawn per condition."""
    return dataclasses.replace(results, records=[r for r in results.records if r.spec.train_condition == condition],
                               table=results.table[results.table["train_condition"] == condition])


def file_suffix(condition: str) -> str:
    """The file-name suffix of a figure of one training condition: none for ``standard``, else ``__`` and
    the condition in letters, digits, ``_`` and ``-`` (``labels[0.1]`` -> ``__labels-0_1``)."""
    if condition == STANDARD:
        return ""
    return "__" + re.sub(r"[^A-Za-z0-9_-]+", "-", condition.replace(".", "_")).strip("-")


def draw_all(results: Results, out_dir: Path | None = None,
             suite_results: Callable[[str], Results] | None = None) -> dict[str, list[Path] | str]:
    """Every figure; one that has no data to draw says why instead of failing the others. A script that
    sets ``SUITE = "name"`` draws that suite's results (``suite_results(name)``) instead; one that sets
    ``PER_CONDITION = True`` is drawn once per training condition (``standard`` under its plain name,
    the others with ``file_suffix``). ``out_dir`` defaults to ``default_out``; ``paper_figures/`` holds
    the committed full suite's figures only: another suite asked to draw there draws into its own folder."""
    from benchmark import figure_style

    own_out = default_out(results)
    if out_dir is None or (out_dir.resolve() == FIGURES_DIR.resolve() and own_out != FIGURES_DIR):
        out_dir = own_out
    figure_style.apply()
    done: dict[str, list[Path] | str] = {}
    for name, module in scripts().items():
        own = getattr(module, "SUITE", None)
        try:
            res = suite_results(own) if own and suite_results else results
            check_selected(res)
            if getattr(module, "PER_CONDITION", False):
                paths: list[Path] = []
                for cond in training_conditions(res.table):
                    with figure_style.suffix(file_suffix(cond)):
                        try:
                            paths += module.draw(of_training_condition(res, cond), out_dir)
                        except NoData:
                            if cond == main_condition(res):
                                raise
                done[name] = paths
            else:
                done[name] = module.draw(res, out_dir)
        except NoData as exc:
            done[name] = f"skipped: {exc}"
    return done


def values(results: Results, metric: str = "accuracy", split: str = "test") -> pd.DataFrame:
    """The table's rows of one metric on one split (``run`` for whole-run quantities such as fit_seconds)."""
    t = results.table
    return t[(t["split"] == split) & (t["metric"] == metric)]


def training_conditions(table: pd.DataFrame) -> list[str]:
    """The training conditions in ``table`` (a tidy table or a part of it), ``standard`` first."""
    return sorted(map(str, pd.unique(table["train_condition"])), key=lambda c: (c != STANDARD, c))


def main_condition(results: Results) -> str:
    """The training condition a figure with one panel set draws: ``standard``, else the first there is."""
    return ([*training_conditions(results.table), STANDARD])[0]


def of_condition(table: pd.DataFrame, condition: str) -> pd.DataFrame:
    return table[table["train_condition"] == condition]


def records_by(results: Results, condition: str, method: str | None = None) -> dict[tuple[str, str], list[RunRecord]]:
    """The finished runs of one training condition (of one base method), by (dataset, method label), in
    sorted order; each list in seed order."""
    out: dict[tuple[str, str], list[RunRecord]] = {}
    for r in results.ok:
        if r.spec.train_condition == condition and (method is None or r.spec.method == method):
            out.setdefault((r.dataset, r.method), []).append(r)
    return {k: sorted(v, key=lambda r: r.spec.seed) for k, v in sorted(out.items())}


def condition_title(condition: str) -> str:
    return f"training condition: {condition}"


def mean_band(values: pd.Series | np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds of one cell (collapsed to the mean with one seed)."""
    mean, lo, hi = mean_interval(np.asarray(values, dtype=float), CONFIDENCE)
    return mean, (lo if np.isfinite(lo) else mean), (hi if np.isfinite(hi) else mean)


def band(rows: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t band over seeds (rows) for each column (the tables' interval,
    ``statistics.mean_interval``); the band collapses where it is undefined (one seed)."""
    arr = np.asarray(rows, dtype=float)
    cols = [mean_interval(arr[:, j], confidence) for j in range(arr.shape[1])]
    mean = np.array([c[0] for c in cols])
    lo = np.array([c[1] if np.isfinite(c[1]) else c[0] for c in cols])
    hi = np.array([c[2] if np.isfinite(c[2]) else c[0] for c in cols])
    return mean, lo, hi
