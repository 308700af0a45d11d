"""``leaderboard.html``: one self-contained page (no network, no CDN): a sortable table per dataset and
condition family, the significance marks, where the timings came from, and links to the figures."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.figures import FIGURES_DIR
from benchmark.leaderboard import mean_interval

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var desc = th.getAttribute('data-order') !== 'desc';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
      th.setAttribute('data-order', desc ? 'desc' : 'asc');
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-value'), y = b.cells[col].getAttribute('data-value');
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return desc ? -cmp : cmp;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; cursor: pointer; } th[data-order]::after { content: ' \\2195'; }
td:first-child, th:first-child { text-align: left; }
.mark { font-weight: bold; }
"""


def _cell(mean: float, lo: float, hi: float, scale: float, mark: bool = False) -> str:
    if not np.isfinite(mean):
        return '<td data-value="">—</td>'
    text = f"{mean * scale:.1f}" if scale == 100 else f"{mean * scale:.3g}"
    if np.isfinite(lo):
        text += f" ± {(hi - lo) / 2 * scale:.1f}" if scale == 100 else f" ± {(hi - lo) / 2 * scale:.2g}"
    if mark:
        text = f'<span class="mark">{text} ✓</span>'
    return f'<td data-value="{mean:.10g}">{text}</td>'


def _table(caption: str, header: list[str], rows: list[str], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return (f'<h3>{html.escape(caption)}</h3>\n<table class="sortable" id="{table_id}"><thead><tr>{head}</tr>'
            f'</thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>")


def render(table: pd.DataFrame, long: pd.DataFrame, marks: set, columns: dict, records: list[dict[str, Any]],
           suite: str, rule: str, out_dir: Path) -> str:
    envs = sorted({(r.get("environment", {}).get("device_name", "?"), r.get("environment", {}).get("device", "?"),
                    r.get("clock", "?"), r.get("memory_meter", "?")) for r in records})
    parts = [f"<h1>Leaderboard: suite <code>{html.escape(suite)}</code></h1>",
             f"<p>Model selection: <code>{html.escape(rule)}</code>. Mean ± half-width of the 95% t-interval over "
             "seeds. ✓: not significantly worse than the best (paired t-test over seeds, Holm-corrected). Click a "
             "column header to sort.</p>",
             "<p>Timings and memory came from: " + "; ".join(
                 f"{html.escape(n)} ({html.escape(d)}), clock <code>{html.escape(c)}</code>, memory "
                 f"<code>{html.escape(m)}</code>" for n, d, c, m in envs) + ".</p>"]
    for (dataset, cond), part in table.groupby(["dataset", "train_condition"], sort=True):
        slug = f"{dataset}-{cond}".replace("[", "-").replace("]", "").replace(".", "_")
        parts.append(f"<h2>{html.escape(dataset)} (training: {html.escape(cond)})</h2>")
        rows = []
        for _, r in part.iterrows():
            cells = [f'<td data-value="{html.escape(r["method"])}">{html.escape(r["method"])}</td>']
            for col, (_, _, scale) in columns.items():
                cells.append(_cell(r[col], r[f"{col}_ci_low"], r[f"{col}_ci_high"], scale,
                                   col == "clean_accuracy" and (dataset, cond, "clean", r["method"]) in marks))
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(_table("Overview", ["method", *(h for h, _, _ in columns.values())], rows, f"overview-{slug}"))
        sub = long[(long["dataset"] == dataset) & (long["train_condition"] == cond)]
        for fam, fpart in sub.groupby("family", sort=True):
            rows = []
            for method, g in fpart.groupby("method"):
                v = g["accuracy"].to_numpy(float)
                mean, lo, hi = mean_interval(v)
                rows.append(f'<tr><td data-value="{html.escape(method)}">{html.escape(method)}</td>'
                            + _cell(mean, lo, hi, 100, (dataset, cond, fam, method) in marks)
                            + f'<td data-value="{len(v)}">{len(v)}</td></tr>')
            parts.append(_table(f"{fam}: mean accuracy over the family's conditions (%)",
                                ["method", "accuracy (%)", "seeds"], rows, f"{fam}-{slug}"))
    figures = sorted(FIGURES_DIR.glob("*.png"))
    if figures:
        links = "".join(f'<li><a href="{html.escape(os.path.relpath(f, out_dir))}">{html.escape(f.stem)}</a></li>'
                        for f in figures)
        parts.append(f"<h2>Figures</h2><ul>{links}</ul>")
    parts.append('<p>Statistics: <a href="statistics.md">statistics.md</a>; claims: '
                 '<a href="claims.md">claims.md</a>.</p>')
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Leaderboard {html.escape(suite)}'
            f"</title><style>{STYLE}</style></head><body>\n{body}\n<script>{SCRIPT}</script></body></html>\n")
