"""``leaderboard.html``: one self-contained page (no network, no CDN), rendered by Jinja2 from
``templates/leaderboard.html.j2`` with the sorting script and style inlined from ``static/``.

It answers first: the summary per training condition (the Markdown's mean-rank table: primary score per
dataset, mean rank, missing-modality accuracy, parameters, and the Δ to the best with its interval when
the table carries it), then a table of contents, one collapsible section per dataset and training
condition (the overview sorted by score with the worst condition, the robustness areas, the accuracy per
condition family), the suite's own figures inline, the failed runs and where the numbers came from
(commit, date, device, clock). Every row links to the record files it averages."""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from benchmark.leaderboard import COLUMNS
from benchmark.report.markdown import INTERVAL_TEXT, records, si
from benchmark.results import Results
from benchmark.selection import RULES
from benchmark.statistics import MARGIN, logit_intervals, noninferiority_text, rank_scores

HERE = Path(__file__).parent
STANDARD = "standard"
#: Columns where less is better: their first click sorts ascending.
LOWER_IS_BETTER = {"mean rank", "clean ECE (%)", "train time (s)", "inference (us/sample)", "peak memory (MB)",
                   "parameters"}
#: A Δ-to-best column triple, as ``PREFIX_delta_to_best`` with ``PREFIX_delta_low`` / ``PREFIX_delta_high``.
DELTA = re.compile(r"^(?P<prefix>.+)_delta_to_best$")


@dataclass(frozen=True)
class Cell:
    text: str
    value: str = ""  # what sorting compares (a number as text, or a label); empty sorts last
    mark: bool = False
    href: str = ""
    sub: str = ""  # a second, smaller line (the Δ to the best and its interval)
    links: tuple[tuple[str, str], ...] = ()  # (text, href): the run records behind a row


@dataclass(frozen=True)
class Header:
    label: str
    numeric: bool = True
    title: str = ""

    @property
    def first(self) -> str:
        """The direction of a first click: best first (descending scores, ascending costs and ranks)."""
        return "ascending" if (not self.numeric or self.label in LOWER_IS_BETTER) else "descending"


@dataclass
class Table:
    id: str
    caption: str
    header: list[Header]
    rows: list[list[Cell]]
    sorted_by: int = -1  # the column the rows are ordered by (aria-sort), -1 for none
    direction: str = "descending"
    note: str = ""
    row_ids: list[str] = field(default_factory=list)  # anchors, one per row (the summary links to them)


@dataclass
class Section:
    id: str
    dataset: str
    condition: str
    tables: list[Table] = field(default_factory=list)
    open: bool = False


def slug(*parts: str) -> str:
    """An id usable in a CSS selector: letters, digits, _ and - only (variants carry = , [ ] . and spaces)."""
    text = "-".join(parts).replace("[", "-").replace("]", "").replace(".", "_")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _finite(x: Any) -> bool:
    return x.__class__ is float and x - x == 0.0 or (x is not None and x.__class__ is not str and _finite_any(x))


def _finite_any(x: Any) -> bool:
    try:
        return math.isfinite(x)
    except TypeError:
        return False


def _esc(text: str) -> str:
    """``html.escape`` for the few texts that need it (most cells are numbers: checking is cheaper)."""
    return escape(text) if ("&" in text or "<" in text or ">" in text or '"' in text) else text


def number_cell(mean: float, lo: float, hi: float, scale: float, mark: bool = False, sub: str = "") -> Cell:
    """``mean [low, high]`` (one decimal for percentages, three significant digits otherwise): the
    intervals of bounded quantities are not symmetric (logit scale), so no ``±``."""
    if not _finite(mean):
        return Cell("—")
    interval = _finite(lo) and _finite(hi)
    if scale == 100:
        text = f"{mean * 100:.1f}" + (f" [{lo * 100:.1f}, {hi * 100:.1f}]" if interval else "")
    else:
        text = f"{mean * scale:.3g}" + (f" [{lo * scale:.3g}, {hi * scale:.3g}]" if interval else "")
    return Cell(text, f"{mean:.6g}", mark, sub=sub)


def delta_columns(table: pd.DataFrame) -> list[str]:
    """The prefixes of the Δ-to-best columns the table carries (none until the statistics provide them)."""
    out = []
    for c in table.columns:
        m = DELTA.match(str(c))
        if m and {f"{m['prefix']}_delta_low", f"{m['prefix']}_delta_high"} <= set(table.columns):
            out.append(m["prefix"])
    return sorted(out)


def delta_text(row: Mapping[str, Any], prefix: str) -> str:
    """``Δ −0.4 [−1.1, 0.3]`` in percentage points; empty where there is no value."""
    d, lo, hi = (row.get(f"{prefix}_delta_{k}") for k in ("to_best", "low", "high"))
    if not _finite(d):
        return ""
    text = f"Δ {d * 100:+.1f}".replace("-", "−")
    if _finite(lo) and _finite(hi):
        text += f" [{lo * 100:+.1f}, {hi * 100:+.1f}]".replace("-", "−")
    return text


def ordered_conditions(rows: list[dict[str, Any]]) -> list[str]:
    """The training conditions of the table's rows, ``standard`` first."""
    return sorted({str(r["train_condition"]) for r in rows}, key=lambda c: (c != STANDARD, c))


# ---- where each row's records are -----------------------------------------------------------------------

def record_links(results: Results, out_dir: Path) -> dict[tuple[str, str, str], list[tuple[str, str]]]:
    """(dataset, training condition, method label) -> [(seed text, relative path)] of the selected records,
    seed order; a failed run's seed is marked ``✗``. Read from the results' run frame (made once for the
    leaderboard), one ``relpath`` per folder."""
    runs = results.runs()
    folders: dict[str, str] = {}
    out: dict[tuple[str, str, str], list[tuple[int, str, str]]] = {}
    columns = [runs[c].tolist() for c in ("dataset", "train_condition", "method", "seed", "status", "path")]
    for dataset, cond, method, seed, status, path in zip(*columns, strict=True):
        parent, _, name = str(path).rpartition("/")
        if parent not in folders:
            folders[parent] = Path(os.path.relpath(parent, out_dir)).as_posix()
        out.setdefault((str(dataset), str(cond), str(method)), []).append(
            (int(seed), f"{seed}" + ("" if status == "ok" else " ✗"), f"{folders[parent]}/{name}"))
    return {k: [(t, h) for _, t, h in sorted(v)] for k, v in out.items()}


def method_cell(method: str, links: Sequence[tuple[str, str]]) -> Cell:
    return Cell(method, method, links=tuple(links))


# ---- the summary ----------------------------------------------------------------------------------------

def _ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks within each column, 1 = highest, ties share the mean rank, NaN stays NaN: the suite's one
    ranking function (``statistics.rank_scores``), which the Markdown summary and the tests use too."""
    return rank_scores(pd.DataFrame(scores), axis=0).to_numpy()


def summary_tables(rows_of: list[dict[str, Any]], marks: set, deltas: list[str]) -> list[Table]:
    """Per training condition (standard first): each method's clean score per dataset in the dataset's
    primary metric (✓ = the best or shown non-inferior to it, see ``noninferiority_text``; the Δ to the
    best and its interval below when the table has it), its mean rank over the datasets (1 = best), its
    `missing`-family accuracy and its parameters (median over the datasets), rows by mean rank. Each
    score links to its row in the dataset's section."""
    out = []
    primary = {r["dataset"]: r.get("primary_metric", "accuracy") for r in rows_of}
    index = {(r["dataset"], r["train_condition"], r["method"]): r for r in rows_of}
    for cond in ordered_conditions(rows_of):
        datasets = sorted({r["dataset"] for r in rows_of if r["train_condition"] == cond})
        methods = sorted({r["method"] for r in rows_of if r["train_condition"] == cond})
        grid = [[index.get((d, cond, m), {}) for d in datasets] for m in methods]
        score = np.array([[r.get("clean_primary", np.nan) for r in line] for line in grid], dtype=float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a method without any finished run: NaN, shown as —
            ranks = np.nanmean(_ranks(score), axis=1) if score.size else np.array([])
            missing = np.array([np.nanmean([r.get("missing_mean_accuracy", np.nan) for r in line]) for line in grid])
            params = np.array([np.nanmedian([r.get("n_parameters", np.nan) for r in line]) for line in grid])
        header = [Header("method", numeric=False), Header("mean rank", title="mean rank over the datasets, 1 = best")]
        header += [Header(f"{d} (bal. acc)" if primary.get(d) == "balanced_accuracy" else d,
                          title=f"clean {str(primary.get(d, 'accuracy')).replace('_', ' ')} (%) on {d}")
                   for d in datasets]
        header += [Header("missing (%)", title="the missing family's mean accuracy, averaged over the datasets"),
                   Header("parameters", title="trainable parameters, median over the datasets")]
        rows = []
        for i in sorted(range(len(methods)), key=lambda i: (not _finite(ranks[i]), ranks[i], methods[i])):
            method = methods[i]
            cells = [method_cell(method, ()), _plain(ranks[i], f"{ranks[i]:.2f}")]
            for j, d in enumerate(datasets):
                v = score[i, j]
                if not _finite(v):
                    cells.append(Cell("—"))
                    continue
                sub = " ".join(t for p in deltas if (t := delta_text(grid[i][j], p)))
                cells.append(Cell(f"{v * 100:.1f}", f"{v:.10g}", (d, cond, "clean", method) in marks,
                                  href=f"#{slug('row', d, cond, method)}", sub=sub))
            cells += [_plain(missing[i], f"{missing[i] * 100:.1f}"), _plain(params[i], si(params[i]))]
            rows.append(cells)
        out.append(Table(slug("summary", cond), f"training: {cond}", header, rows, sorted_by=1,
                         direction="ascending"))
    return out


def _plain(value: float, text: str) -> Cell:
    return Cell(text, f"{value:.10g}") if _finite(value) else Cell("—")


def side_by_side(rows_of: list[dict[str, Any]]) -> Table | None:
    """Each method's clean primary score and missing-family accuracy, averaged over the datasets, under each
    training condition: what scarce labels or missing modalities in training cost or buy it."""
    conds = ordered_conditions(rows_of)
    if len(conds) < 2:
        return None
    values: dict[tuple[str, str, str], list[float]] = {}
    for r in rows_of:
        for col in ("clean_primary", "missing_mean_accuracy"):
            values.setdefault((r["method"], r["train_condition"], col), []).append(r.get(col, np.nan))
    header = [Header("method", numeric=False)] + [Header(f"{c}: {w}") for c in conds for w in ("clean", "missing")]
    rows = []
    for method in sorted({r["method"] for r in rows_of}):
        cells = [method_cell(method, ())]
        for c in conds:
            for col in ("clean_primary", "missing_mean_accuracy"):
                v = float(np.mean(values.get((method, c, col), [np.nan])))
                cells.append(_plain(v, f"{v * 100:.1f}"))
        rows.append(cells)
    return Table("side-by-side", "Clean score and missing-family accuracy (%), averaged over the datasets, per "
                 "training condition", header, _sort_rows(rows, 1), sorted_by=1)


# ---- the sections ---------------------------------------------------------------------------------------

def _family_cells(long: pd.DataFrame, marks: set) -> tuple[dict, dict[tuple[str, str], list[str]]]:
    """(dataset, condition, family, method) -> its mean accuracy cell over seeds (every group's interval at
    once), and each (dataset, condition)'s families, clean first."""
    groups = long.groupby(["dataset", "train_condition", "family", "method"], sort=True)
    sizes = groups.size()
    codes = groups.ngroup().to_numpy()
    mean, lo, hi = logit_intervals(long["accuracy"].to_numpy(float), codes.astype(np.int64), len(sizes))
    cells, fams = {}, {}
    for i, key in enumerate(sizes.index):
        cells[key] = number_cell(mean[i], lo[i], hi[i], 100, key in marks)
        fams.setdefault(key[:2], set()).add(key[2])
    return cells, {k: sorted(v, key=lambda f: (f != "clean", f)) for k, v in fams.items()}


def _seeds(r: Mapping[str, Any]) -> Cell:
    text = f"{r['seeds_ok']}" + (f" (+{r['seeds_failed']} failed)" if r.get("seeds_failed") else "") + (
        f" ({r['seeds_stale']} stale)" if r.get("seeds_stale") else "")
    return Cell(text, str(r["seeds_ok"]))


def _sort_rows(rows: list[list[Cell]], col: int) -> list[list[Cell]]:
    """Best first on column ``col`` (its value, descending), dashes last, ties by name."""
    return sorted(rows, key=lambda r: (r[col].value == "", -float(r[col].value or 0), r[0].value))


def sections(table: pd.DataFrame, all_rows: list[dict[str, Any]], long: pd.DataFrame, marks: set, links: Mapping,
             baseline: str | None, deltas: list[str]) -> list[Section]:
    fam_cells, fam_names = _family_cells(long, marks)
    aucs = sorted(c[7:] for c in table.columns if c.startswith("sevavg_") and not c.endswith(("_low", "_high")))
    conds = ordered_conditions(all_rows)
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in all_rows:
        by_key.setdefault((r["dataset"], r["train_condition"]), []).append(r)
    out = []
    for dataset in sorted({d for d, _ in by_key}):
        for cond in [c for c in conds if (dataset, c) in by_key]:
            part, sid = by_key[(dataset, cond)], slug(dataset, cond)
            section = Section(sid, dataset, cond, open=False)
            header = [Header("method", numeric=False), *(Header(col.header) for col in COLUMNS.values())]
            header += [Header(f"Δ to best ({p.replace('_', ' ')}, pp)") for p in deltas]
            header += [Header("worst condition", numeric=False), Header("seeds")]
            rows = []
            for r in part:
                primary = f"clean_{r.get('primary_metric', 'accuracy')}"
                cells = [method_cell(r["method"], links.get((dataset, cond, r["method"]), ()))]
                cells += [number_cell(r.get(c, np.nan), r.get(f"{c}_ci_low", np.nan), r.get(f"{c}_ci_high", np.nan),
                                      col.scale, c == primary and (dataset, cond, "clean", r["method"]) in marks)
                          for c, col in COLUMNS.items()]
                cells += [Cell(t, f"{r[f'{p}_delta_to_best']:.10g}" if t else "")
                          for p in deltas for t in [delta_text(r, p)]]
                worst = r.get("worst_condition") or ""
                cells += [Cell(str(worst) or "—", str(worst)), _seeds(r)]
                rows.append(cells)
            primary_col = 1 + list(COLUMNS).index(f"clean_{part[0].get('primary_metric', 'accuracy')}") \
                if f"clean_{part[0].get('primary_metric', 'accuracy')}" in COLUMNS else 1
            rows = _sort_rows(rows, primary_col)
            section.tables.append(Table(slug("overview", sid), "Overview", header, rows, sorted_by=primary_col,
                                        row_ids=[slug("row", dataset, cond, r[0].value) for r in rows],
                                        note="Rows by the clean score in the dataset's primary metric; "
                                             "the numbers after a method name are its seeds' record files."))
            fams = [f for f in aucs if any(_finite(r.get(f"sevavg_{f}")) for r in part)]
            if fams:
                kinds = [("sevavg", "", 100), ("rr", "RR ", 1)]
                if baseline:
                    kinds.append(("er", "ER ", 1))
                used = [(k, label, scale, f) for k, label, scale in kinds for f in fams
                        if any(_finite(r.get(f"{k}_{f}")) for r in part)]
                header = [Header("method", numeric=False), *(Header(f"{label}{f}") for _, label, _, f in used)]
                rows = [[method_cell(r["method"], ()),
                         *(number_cell(r.get(f"{k}_{f}"), r.get(f"{k}_{f}_ci_low"), r.get(f"{k}_{f}_ci_high"), scale)
                           for k, _, scale, f in used)] for r in part]
                section.tables.append(Table(
                    slug("robustness", sid), "Robustness", header, _sort_rows(rows, 1), sorted_by=1,
                    note="Per condition family: severity-averaged accuracy (the area under accuracy against "
                         "severity, clean at 0, divided by the grid's width, %); RR, MultiBench's relative "
                         "robustness (its trapezoid sum with a fixed step of 0.1 per level)" + (
                             f"; ER, MultiBench's effective robustness against {baseline} (accuracy kept beyond "
                             "the baseline's curve shifted to the method's clean accuracy, summed over the levels), "
                             "paired by seed." if baseline else ".")))
            families = fam_names.get((dataset, cond), [])
            if families:
                methods = sorted({r["method"] for r in part})
                header = [Header("method", numeric=False), *(Header(f) for f in families)]
                rows = [[method_cell(m, ()), *(fam_cells.get((dataset, cond, f, m), Cell("—")) for f in families)]
                        for m in methods]
                section.tables.append(Table(
                    slug("families", sid), "Accuracy per condition family (%)", header, _sort_rows(rows, 1),
                    sorted_by=1, note="Mean over the family's conditions (clean: the primary metric) with its "
                                      "logit-scale interval; ✓: the best in that family or shown non-inferior to "
                                      f"it within {MARGIN * 100:g} point(s) (the same test as above)."))
            out.append(section)
    return out


# ---- provenance, figures, failures ---------------------------------------------------------------------

def commit_date(commit: str, cwd: Path) -> str:
    """The commit's date from git (records carry the commit, not a date); empty when git does not know it."""
    try:
        done = subprocess.run(["git", "-C", str(cwd), "show", "-s", "--format=%cI", commit], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def provenance(results: Results, suite: str, rule: str) -> list[tuple[str, str]]:
    """What the numbers came from, as (label, text): suite, records, commits with their dates, engine,
    devices, clock and memory meter, library versions."""
    commits: dict[str, int] = {}
    devices, clocks, meters, engines, libs = set(), set(), set(), set(), set()
    for r in results.records:
        env = r.body.get("environment") or {}
        c = str(env.get("git_commit") or "unknown") + (" (uncommitted changes)" if env.get("git_dirty") else "")
        commits[c] = commits.get(c, 0) + 1
        devices.add(f"{env.get('device_name', '?')} ({env.get('device', '?')}, "
                    f"{env.get('torch_threads', '?')} torch thread(s))")
        clocks.add(str(r.body.get("clock", "?")))
        meters.add(str(r.body.get("memory_meter", "?")))
        engines.add(str(r.provenance.engine_version) if r.provenance else "?")
        libs.add(f"Python {env.get('python', '?')}, torch {env.get('torch', '?')}, numpy {env.get('numpy', '?')}")
    repo = Path(__file__).resolve().parents[2]
    commit_texts = []
    for c, n in sorted(commits.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
        date = commit_date(c.split()[0], repo) if c != "unknown" else ""
        commit_texts.append(f"{c[:12]}{c[40:] if len(c) > 40 else ''}" + (f" of {date}" if date else "")
                            + f": {n} record(s)")
    if len(commits) > 5:
        commit_texts.append(f"and {len(commits) - 5} more")
    return [("suite", suite), ("records", f"{len(results.records)} selected ({len(results.failed)} failed, "
                                          f"{len(results.stale)} stale)"),
            ("model selection", f"{rule}: {RULES[rule].text}" if rule in RULES else rule),
            ("commit", "; ".join(commit_texts)), ("engine version", ", ".join(sorted(engines))),
            ("device", "; ".join(sorted(devices))), ("clock", ", ".join(sorted(clocks))),
            ("memory meter", ", ".join(sorted(meters))), ("software", "; ".join(sorted(libs)))]


def caption(script: Path) -> str:
    """A figure's caption: the first sentence of its script's docstring (read with ``ast``: importing the
    script would import matplotlib)."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    first = " ".join(doc.split())
    return first.split(". ")[0].rstrip(".") + "." if first else ""


def figure_entries(figures_dir: Path | None, out_dir: Path) -> list[dict[str, str]]:
    if not figures_dir or not figures_dir.is_dir():
        return []
    from benchmark.paths import FIGURES_DIR

    out = []
    for png in sorted(figures_dir.glob("*.png")):
        pdf = png.with_suffix(".pdf")
        out.append({"name": png.stem, "src": Path(os.path.relpath(png, out_dir)).as_posix(),
                    "pdf": Path(os.path.relpath(pdf, out_dir)).as_posix() if pdf.exists() else "",
                    "caption": caption(FIGURES_DIR / f"{png.stem}.py")})
    return out


def failures(results: Results, out_dir: Path) -> list[dict[str, str]]:
    return [{"text": f"{r.method} on {r.dataset} ({r.spec.train_condition}), seed {r.spec.seed}: "
                     f"{r.error.get('type', '')}: {r.error.get('message', '')}",
             "href": Path(os.path.relpath(r.path, out_dir)).as_posix()} for r in results.failed]


def cell_html(c: Cell) -> str:
    """One ``<td>``, written here rather than by a Jinja macro: a page has thousands of cells, and a macro
    call per cell tripled the page's rendering time."""
    text = _esc(c.text)
    if c.mark:
        text = f'<strong class="mark">{text} ✓</strong>'
    if c.href:
        text = f'<a href="{_esc(c.href)}">{text}</a>'
    if c.sub:
        text += f'<span class="sub">{_esc(c.sub)}</span>'
    if c.links:
        text += '<span class="runs">runs ' + " ".join(
            f'<a href="{_esc(h)}">{_esc(t)}</a>' for t, h in c.links) + "</span>"
    return f'<td data-value="{_esc(c.value)}">{text}</td>' if c.value else f"<td>{text}</td>"


def table_html(t: Table) -> Markup:
    """A sortable table in a horizontally scrolling region (the page itself never scrolls sideways): a
    button per header (keyboard-reachable), ``aria-sort`` on the column the rows are ordered by."""
    heads = []
    for i, h in enumerate(t.header):
        attrs = (f' aria-sort="{t.direction}"' if i == t.sorted_by else "") + (
            f' title="{escape(h.title)}"' if h.title else "")
        heads.append(f'<th scope="col"{attrs}><button type="button" data-first="{h.first}">'
                     f'{escape(h.label, quote=False)}<span class="dir" aria-hidden="true"></span></button></th>')
    body = []
    for i, row in enumerate(t.rows):
        rid = f' id="{t.row_ids[i]}"' if t.row_ids else ""
        body.append(f"<tr{rid}>" + "".join(map(cell_html, row)) + "</tr>")
    note = f'<p class="tnote">{escape(t.note, quote=False)}</p>' if t.note else ""
    return Markup(f'<div class="scroll" role="region" aria-labelledby="cap-{t.id}" tabindex="0">\n'
                  f'<table class="sortable" id="{t.id}">\n<caption id="cap-{t.id}">{escape(t.caption, quote=False)}'
                  f'</caption>\n<thead><tr>{"".join(heads)}</tr></thead>\n<tbody>\n' + "\n".join(body)
                  + f"\n</tbody></table></div>\n{note}")


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render(table: pd.DataFrame, long: pd.DataFrame, marks: set, results: Results, suite: str, rule: str,
           out_dir: Path, figures_dir: Path | None = None, baseline: str | None = None) -> str:
    deltas = delta_columns(table)
    baseline = baseline or getattr(results.scope, "baseline", None)
    links = record_links(results, out_dir)
    rows = records(table.reset_index(drop=True))
    secs = sections(table, rows, long, marks, links, baseline, deltas)
    summaries = summary_tables(rows, marks, deltas)
    conds = ordered_conditions(rows)
    toc: dict[str, list[Section]] = {}
    for s in secs:
        toc.setdefault(s.dataset, []).append(s)
    if secs:
        secs[0].open = True
    env = _environment()
    env.globals["table"] = table_html
    return env.get_template("leaderboard.html.j2").render(
        suite=suite, rule=rule, notes=results.notes(), intervals=INTERVAL_TEXT, mark_legend=noninferiority_text(MARGIN),
        n_records=len(results.records), n_failed=len(results.failed),
        n_datasets=table["dataset"].nunique(), n_methods=table["method"].nunique(), conditions=conds,
        summaries=summaries, side=side_by_side(rows), sections=secs, toc=toc,
        provenance=provenance(results, suite, rule), figures=figure_entries(figures_dir, out_dir),
        failed=failures(results, out_dir), deltas=bool(deltas),
        untrained=_untrained(rows),
        script=Markup((HERE / "static" / "sortable.js").read_text()),
        style=Markup((HERE / "static" / "style.css").read_text()))


def _untrained(rows: list[dict[str, Any]]) -> list[str]:
    """The rows whose kept weights never took an optimisation step (as the Markdown lists them)."""
    return [f"{r['method']} on {r['dataset']} ({r['train_condition']}, {int(r['seeds_kept_untrained'])} of "
            f"{int(r['seeds_ok'])} seeds)" for r in rows if (r.get("seeds_kept_untrained") or 0) > 0]
