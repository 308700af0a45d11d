"""Results read back: the records of a results folder, validated, and one tidy table of them.

``load(folder, scope)`` reads ``runs/*.json`` (never re-plans a suite, never imports torch or a method),
keeps the records a suite's scope covers, flags stale ones (made by older code) and names the files that
are not valid records. ``Results.table`` has one row per (run x condition x metric), with every key a
consumer groups by computed here, once:

- run: ``run_id``, ``method`` (the row label), ``base_method``, ``overrides`` (the hyperparameters a suite
  set, as JSON), ``dataset`` (the label, with a variant's parameters), ``dataset_name``,
  ``train_condition``, ``seed``, ``draw``, ``status``, ``stale``;
- condition: ``split`` (``test``; ``val`` for the validation scores model selection reads; ``run`` for
  quantities of the whole run such as training time, where ``condition`` is empty), ``condition``,
  ``condition_index`` (its place in the suite's grid), ``protocol``, ``family``, ``severity``, ``curve``;
- ``metric`` and ``value``.

``benchmark.load_results(suite or folder)`` returns that table for custom analyses.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.prefetch import RecordPrefetch, record_files
from benchmark.records import RecordError, RunRecord, load_record, record_of_valid_body
from benchmark.rows import COLUMNS, CONDITION_METRICS, RUN_KEYS, choose, gather, run_columns
from benchmark.scope import SuiteScope, suite_scope


@dataclass
class Results:
    """A suite's records read back: the valid ones (sorted by run identity), why some are stale, the files
    that are not valid records, how many valid records belong to other suites, and the tidy table."""

    scope: SuiteScope
    records: list[RunRecord]
    stale: dict[str, str]  # run_id -> reason
    problems: list[RecordError]
    other: int  # valid records outside the scope (another suite, settings the suite no longer has)
    table: pd.DataFrame
    superseded: int = 0  # records of a run that a fresher record of the same run replaces
    _runs: tuple | None = field(default=None, init=False, repr=False, compare=False)  # runs() of these records

    @property
    def ok(self) -> list[RunRecord]:
        return [r for r in self.records if r.ok]

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if not r.ok]

    def primary_metrics(self) -> dict[str, str]:
        """The metric each dataset's leaderboard ranks on, as its card declares it (recorded by the run;
        records from before cards declared it rank on accuracy)."""
        return {r.dataset: str(r.body.get("primary_metric", "accuracy")) for r in self.records}

    def by_id(self) -> dict[str, RunRecord]:
        return {r.run_id: r for r in self.records}

    def runs(self) -> pd.DataFrame:
        """One row per run: the run keys (what the table repeats on each of its rows). Made once for the
        records and stale marks the results hold (a copy each call: callers add columns)."""
        cached = self._runs
        if cached is None or cached[0] is not self.records or cached[1] != len(self.records) \
                or cached[2] is not self.stale or cached[3] != len(self.stale):
            cached = self._runs = (self.records, len(self.records), self.stale, len(self.stale),
                                   run_frame(self.records, self.stale))
        return cached[4].copy()

    def notes(self) -> list[str]:
        """What a reader of the tables must know: stale records, invalid files, records of other suites."""
        out = []
        if self.stale:
            reasons = sorted(set(self.stale.values()))
            out.append(f"{len(self.stale)} record(s) were made by older code and are shown as stale "
                       f"(rerun the suite to refresh them): {'; '.join(reasons[:3])}"
                       + (f"; and {len(reasons) - 3} more reasons" if len(reasons) > 3 else ""))
        out += [f"not a valid record, left out: {p}" for p in self.problems]
        if self.superseded:
            out.append(f"{self.superseded} older record(s) of runs that have a fresh record are left out")
        if self.other:
            out.append(f"{self.other} record(s) in the folder belong to other suites or settings and are left out")
        return out


def read_folder(folder: Path, prefetch: RecordPrefetch | None = None) -> tuple[list[RunRecord], list[RecordError]]:
    """Every ``runs/*.json`` of ``folder`` (the quarantine is not read), validated; the files that a
    ``prefetch`` read and validated already are taken from it, the others read here."""
    valid, invalid = prefetch.results() if prefetch is not None else ({}, {})
    records, problems = [], []
    for path in record_files(folder):
        key = str(path)
        try:
            if key in valid:
                records.append(record_of_valid_body(valid[key], path))
            elif key in invalid:
                problems.append(RecordError(path, invalid[key]))
            else:
                records.append(load_record(path))
        except RecordError as exc:
            problems.append(exc)
    return records, problems



@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading records makes millions of containers and no cycles: pausing the cycle collector while they
    are read and tabled saves the collections their allocation would trigger, which find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(folder: Path, scope: SuiteScope | None = None, prefetch: RecordPrefetch | None = None) -> Results:
    """The results of ``folder`` within ``scope``. A run recorded twice (older and newer code) counts
    once: the fresh record wins, else the first in file order; the other is left out and counted.
    ``prefetch``: a ``benchmark.prefetch.RecordPrefetch`` of the folder, which read and validated the files
    already (and gathered the table's rows, when it was given the same scope)."""
    with _collector_paused():
        scope = scope or SuiteScope.of_folder(folder)
        try:
            records, problems = read_folder(folder, prefetch)
            kept, stale, inside = choose(records, scope)
            parts = prefetch.gathered([r.run_id for r in kept], stale) if prefetch is not None else None
        finally:
            if prefetch is not None:
                prefetch.close()
        table = table_of(parts) if parts is not None else tidy(kept, stale)
        return Results(scope, kept, stale, problems, len(records) - inside, table, superseded=inside - len(kept))


def run_frame(records: list[RunRecord], stale: dict[str, str] | None = None) -> pd.DataFrame:
    stale = stale or {}
    if not records:
        return pd.DataFrame([], columns=[*RUN_KEYS, "stale_reason", "path", "error"])
    columns: dict[str, list[Any]] = {
        **run_columns(records, stale), "stale_reason": [stale.get(r.run_id, "") for r in records],
        "path": [str(r.path) for r in records],
        "error": [f"{r.error.get('type', '')}: {r.error.get('message', '')}" if not r.ok else "" for r in records]}
    return pd.DataFrame(columns, columns=[*RUN_KEYS, "stale_reason", "path", "error"])


def _array(values: list | bytes, dtype: type) -> np.ndarray:
    """A list as an array of ``dtype``, or the bytes of such an array (benchmark.prefetch packs them)."""
    return np.frombuffer(values, dtype=dtype) if isinstance(values, bytes) else np.asarray(values, dtype=dtype)


def _categorical(values: list[Any], codes: np.ndarray) -> pd.Categorical:
    """``values[codes]`` as a pandas Categorical with its categories in sorted order (so grouping sorts as
    it would on strings), built from codes: a column of 300k rows costs no Python string per row."""
    uniques = sorted(set(values))
    position = {v: i for i, v in enumerate(uniques)}
    recoded = np.array([position[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(recoded[codes] if len(codes) else codes, categories=uniques)


def tidy(records: list[RunRecord], stale: dict[str, str] | None = None) -> pd.DataFrame:
    """The tidy table of ``records`` (failed runs contribute no rows: they have no metrics). Per-row
    values are gathered as codes into the run list and the condition list (benchmark.rows.gather), then
    expanded once."""
    return table_of(gather(records, stale))


def table_of(parts: dict[str, Any]) -> pd.DataFrame:
    """The tidy table from ``gather``'s parts."""
    attrs, metric_names = parts["attrs"], parts["metric_names"]
    rows = np.repeat(np.arange(len(parts["rows_per_run"]), dtype=np.int64), parts["rows_per_run"])
    cc = _array(parts["cond_codes"], np.int64)
    columns: dict[str, Any] = {}
    for col, series in parts["runs"].items():
        if col in ("seed", "draw"):
            columns[col] = np.asarray(series, dtype=np.int64)[rows]
        elif col == "stale":
            columns[col] = np.asarray(series, dtype=bool)[rows]
        else:
            columns[col] = _categorical(series, rows)
    columns["split"] = _categorical([a[0] for a in attrs], cc)
    columns["condition"] = _categorical([a[1] for a in attrs], cc)
    columns["condition_index"] = np.asarray([a[2] for a in attrs], dtype=np.int64)[cc]
    for col in ("protocol", "family", "curve"):
        columns[col] = _categorical([a[3].get(col, "") for a in attrs], cc)
    columns["severity"] = np.asarray([math.nan if a[3].get("severity") is None else float(a[3]["severity"])
                                      for a in attrs], dtype=float)[cc]
    columns["metric"] = _categorical([*CONDITION_METRICS, *metric_names], _array(parts["metric_codes"], np.int64))
    columns["value"] = _array(parts["values"], np.float64)
    return pd.DataFrame(columns, columns=COLUMNS)


def load_results(suite_or_folder: str | Path) -> pd.DataFrame:
    """The tidy table of a suite (its name, or a suite file) or of a results folder (every record in it),
    stale records flagged in the ``stale`` column. See the module docstring for the columns."""
    path = Path(suite_or_folder)
    if path.is_dir():
        return load(path).table
    scope = suite_scope(str(suite_or_folder))
    return load(scope.results_dir, scope).table
