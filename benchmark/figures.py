"""Figures: one script per figure in ``paper_figures/`` (files ``fig_*.py`` with a ``draw(records, out)``
function), found by scanning the folder. They read stored records only; nothing trains."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmark.paths import REPO_ROOT

FIGURES_DIR = REPO_ROOT / "paper_figures"
#: The training costs that figures put on an axis: label -> value of one record (NaN where not measured).
TRAINING_COSTS: dict[str, Callable[[dict[str, Any]], float]] = {
    "training time (s)": lambda r: r["timings"]["fit_seconds"],
    "training FLOPs": lambda r: r["flops"].get("train_estimate") or math.nan,
}


def scripts(folder: Path = FIGURES_DIR) -> dict[str, ModuleType]:
    out = {}
    for path in sorted(folder.glob("fig_*.py")):
        spec = importlib.util.spec_from_file_location(f"benchmark_figure_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        out[path.stem] = module
    return out


def draw_all(records: list[dict[str, Any]], out_dir: Path,
             suite_records: Callable[[str], list[dict[str, Any]]] | None = None) -> dict[str, list[Path] | str]:
    """Every figure; one that has no data to draw says why instead of failing the others. A script that
    sets ``SUITE = "name"`` draws that suite's records (``suite_records(name)``) instead."""
    from benchmark import figure_style

    figure_style.apply()
    done: dict[str, list[Path] | str] = {}
    for name, module in scripts().items():
        own = getattr(module, "SUITE", None)
        try:
            recs = suite_records(own) if own and suite_records else records
            done[name] = module.draw(recs, out_dir)
        except NoData as exc:
            done[name] = f"skipped: {exc}"
    return done


class NoData(Exception):
    """The records hold nothing this figure can draw (e.g. no run of the method it is about)."""


def ok_records(records: list[dict[str, Any]], method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok" and (method is None or r["spec"]["method"] == method)]


def by(records: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    """Group records by spec fields, in sorted order."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(tuple(r["spec"][k] for k in keys), []).append(r)
    return dict(sorted(out.items()))


def band(values: list[list[float]]) -> tuple[Any, Any, Any]:
    """Mean and 95% t-band over seeds (rows) for each column; the band collapses with one seed."""
    import numpy as np

    from benchmark.leaderboard import mean_interval

    arr = np.asarray(values, dtype=float)
    stats = [mean_interval(arr[:, j]) for j in range(arr.shape[1])]
    mean = np.array([s[0] for s in stats])
    lo = np.array([s[1] if np.isfinite(s[1]) else s[0] for s in stats])
    hi = np.array([s[2] if np.isfinite(s[2]) else s[0] for s in stats])
    return mean, lo, hi
