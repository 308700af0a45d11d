"""``leaderboard.html``: one self-contained page (no network, no CDN), rendered by Jinja2 from
``templates/leaderboard.html.j2`` with the sorting script and style inlined from ``static/``: a sortable
table per dataset and training condition and per condition family, the significance marks, where the
timings came from, and links to the figures."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from benchmark.leaderboard import COLUMNS
from benchmark.report.markdown import records
from benchmark.results import Results
from benchmark.statistics import mean_intervals

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Cell:
    text: str
    value: str  # what sorting compares
    mark: bool = False


def number_cell(mean: float, lo: float, hi: float, scale: float, mark: bool = False) -> Cell:
    if not np.isfinite(mean):
        return Cell("—", "")
    text = f"{mean * scale:.1f}" if scale == 100 else f"{mean * scale:.3g}"
    if np.isfinite(lo):
        text += f" ± {(hi - lo) / 2 * scale:.1f}" if scale == 100 else f" ± {(hi - lo) / 2 * scale:.2g}"
    return Cell(text, f"{mean:.10g}", mark)


def _slug(dataset: str, cond: str) -> str:
    """An id usable in a CSS selector: letters, digits, _ and - only (variants carry = , [ ] . and spaces)."""
    text = f"{dataset}-{cond}".replace("[", "-").replace("]", "").replace(".", "_")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _family_rows(long: pd.DataFrame, marks: set) -> dict[tuple[str, str], dict[str, list[list[Cell]]]]:
    """Per (dataset, training condition), per family: a row per method with its mean accuracy, interval
    and number of seeds (every group's interval computed at once)."""
    groups = long.groupby(["dataset", "train_condition", "family", "method"], sort=True)
    sizes = groups.size()
    codes = groups.ngroup().to_numpy(dtype=float)
    kept = np.isfinite(codes)
    mean, lo, hi = mean_intervals(long["accuracy"].to_numpy(float)[kept], codes[kept].astype(np.int64), len(sizes))
    out: dict[tuple[str, str], dict[str, list[list[Cell]]]] = {}
    for i, ((d, c, fam, method), n) in enumerate(sizes.items()):
        out.setdefault((d, c), {}).setdefault(fam, []).append(
            [Cell(method, method), number_cell(mean[i], lo[i], hi[i], 100, (d, c, fam, method) in marks),
             Cell(str(n), str(n))])
    return out


def _sections(table: pd.DataFrame, long: pd.DataFrame, marks: set) -> list[dict]:
    families = _family_rows(long, marks)
    rows_of_table = records(table)
    sections = []
    for (dataset, cond), positions in table.groupby(["dataset", "train_condition"], sort=True).indices.items():
        slug = _slug(dataset, cond)
        rows = [[Cell(r["method"], r["method"]),
                 *(number_cell(r[c], r[f"{c}_ci_low"], r[f"{c}_ci_high"], col.scale,
                               c == f"clean_{r.get('primary_metric', 'accuracy')}"
                               and (dataset, cond, "clean", r["method"]) in marks)
                   for c, col in COLUMNS.items())] for r in (rows_of_table[i] for i in positions)]
        tables = [{"caption": "Overview", "id": f"overview-{slug}", "rows": rows,
                   "header": ["method", *(col.header for col in COLUMNS.values())]}]
        for fam, frows in families.get((dataset, cond), {}).items():
            tables.append({"caption": f"{fam}: mean accuracy over the family's conditions (%)", "id": f"{fam}-{slug}",
                           "header": ["method", "accuracy (%)", "seeds"], "rows": frows})
        sections.append({"dataset": dataset, "condition": cond, "tables": tables})
    return sections


def render(table: pd.DataFrame, long: pd.DataFrame, marks: set, results: Results, suite: str, rule: str,
           out_dir: Path, figures_dir: Path | None = None) -> str:
    envs = sorted({(r.body.get("environment", {}).get("device_name", "?"), r.body.get("environment", {}).get(
        "device", "?"), r.body.get("clock", "?"), r.body.get("memory_meter", "?")) for r in results.records})
    figures = sorted(figures_dir.glob("*.png")) if figures_dir and figures_dir.is_dir() else []
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                      keep_trailing_newline=True)
    return env.get_template("leaderboard.html.j2").render(
        suite=suite, rule=rule, notes=results.notes(),
        environments=[{"name": n, "device": d, "clock": c, "meter": m} for n, d, c, m in envs],
        sections=_sections(table, long, marks),
        figures=[{"href": os.path.relpath(f, out_dir), "name": f.stem} for f in figures],
        script=Markup((HERE / "static" / "sortable.js").read_text()),
        style=Markup((HERE / "static" / "style.css").read_text()))
