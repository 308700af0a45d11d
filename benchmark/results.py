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

import itertools
import json
import math
import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.paths import REPO_ROOT
from benchmark.records import RecordError, RunRecord, SourceHashes, dataset_label, load_record
from benchmark.suite_files import suite_file

#: Per-condition metrics a record holds (the runner computes them; see benchmark.metrics). Records made
#: before balanced accuracy and AUROC were recorded lack those two.
CONDITION_METRICS = ("accuracy", "macro_f1", "nll", "ece", "brier", "balanced_accuracy", "auroc")
_ALL_METRICS = operator.itemgetter(*CONDITION_METRICS)
RUN_KEYS = ["run_id", "method", "base_method", "overrides", "dataset", "dataset_name", "train_condition", "seed",
            "draw", "status", "stale"]
CONDITION_KEYS = ["split", "condition", "condition_index", "protocol", "family", "severity", "curve"]
COLUMNS = [*RUN_KEYS, *CONDITION_KEYS, "metric", "value"]
#: The keys that name one run of a suite; two records with the same key are the same run made twice.
RUN_IDENTITY = ("method", "dataset", "train_condition", "seed", "draw")


def _run_quantities(rec: RunRecord) -> dict[str, float]:
    """Whole-run numbers (split ``run``): cost, timing and what training kept."""
    b = rec.body
    timings, flops, memory = b.get("timings") or {}, b.get("flops") or {}, b.get("memory_mb") or {}
    fit = b.get("fit_summary") or {}
    values = {
        "fit_seconds": timings.get("fit_seconds"),
        "inference_us_per_sample": (timings["inference_seconds_per_sample"] * 1e6
                                    if timings.get("inference_seconds_per_sample") is not None else None),
        "wall_seconds": b.get("wall_seconds"),
        "n_parameters": b.get("n_parameters"),
        "train_flops": flops.get("train_estimate"),
        "inference_flops_per_sample": flops.get("inference_per_sample"),
        "memory_fit_mb": memory.get("fit"),
        "memory_evaluate_mb": memory.get("evaluate"),
        "memory_inference_mb": memory.get("inference"),
        "peak_memory_mb": _peak_memory(b),
        "best_epoch": fit.get("best_epoch"),
        "kept_before_first_step": fit.get("kept_before_first_step"),
        "epochs_run": fit.get("epochs_run"),
        "n_train_labeled": b.get("n_train_labeled"),
        "n_val_labeled": b.get("n_val_labeled"),
    }
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def _peak_memory(body: dict[str, Any]) -> float | None:
    """The run's peak resident memory (MB): recorded by the sweep since runs execute in a child process,
    else (older records) the largest of the meter's per-phase peaks where those measured the process."""
    if isinstance(body.get("peak_memory_mb"), int | float):
        return body["peak_memory_mb"]
    phases = [v for v in (body.get("memory_mb") or {}).values() if isinstance(v, int | float)]
    return max(phases) if phases and str(body.get("memory_meter", "")).startswith("process") else None


@dataclass(frozen=True)
class SuiteScope:
    """What of a results folder belongs to a suite, read from its TOML file alone (no registry, no torch):
    methods (None = all), dataset labels (None = all), seeds, training conditions, the budget keys it
    sets and the number of hyperparameter draws."""

    name: str
    results_dir: Path
    methods: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    seeds: frozenset[int] | None = None
    training_conditions: frozenset[str] | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    hparam_draws: int | None = None  # None: every draw
    baseline: str | None = "late_fusion"
    selection_rule: str = "clean_val"

    def covers(self, rec: RunRecord) -> bool:
        s = rec.spec
        return ((self.methods is None or s.row in self.methods)
                and (self.datasets is None or rec.dataset in self.datasets)
                and (self.seeds is None or s.seed in self.seeds)
                and (self.training_conditions is None or s.train_condition in self.training_conditions)
                and all(s.budget.get(k) == v for k, v in self.budget.items())
                and (self.hparam_draws is None or s.draw < self.hparam_draws))

    @classmethod
    def of_folder(cls, folder: Path) -> SuiteScope:
        """Everything in a folder (no suite named)."""
        return cls(name=folder.name, results_dir=folder)


def suite_scope(name_or_path: str, results: Path | None = None) -> SuiteScope:
    """The scope of a suite file (``benchmark/suites/NAME.toml`` or a path)."""
    path = suite_file(name_or_path)
    raw = tomllib.loads(path.read_text())
    params = raw.get("dataset_params", {})
    datasets = raw.get("datasets", "all")
    labels = None
    if datasets != "all":
        labels = frozenset(
            dataset_label({"dataset": e["name"], "dataset_params": {k: v for k, v in e.items() if k != "name"}})
            if isinstance(e, dict) else dataset_label({"dataset": e, "dataset_params": params.get(e, {})})
            for e in datasets)
    methods = raw.get("methods", "all")
    listed = methods if isinstance(methods, list) else []
    variants = [str(v.get("label")) for v in [*raw.get("variants", []), *listed] if isinstance(v, dict)]
    name = raw.get("name", path.stem)
    folder = results or REPO_ROOT / (raw.get("results") or f"results/{name}")
    return SuiteScope(
        name=name, results_dir=folder,
        methods=None if methods == "all" else frozenset([*(m for m in methods if isinstance(m, str)), *variants]),
        datasets=labels,
        seeds=frozenset(int(s) for s in raw.get("seeds", [0])),
        training_conditions=frozenset(raw.get("training_conditions", ["standard"])),
        budget=dict(raw.get("budget", {})), hparam_draws=int(raw.get("hparam_draws", 1)),
        baseline=raw.get("robustness_baseline", "late_fusion"), selection_rule=raw.get("selection_rule", "clean_val"))


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
        """One row per run: the run keys (what the table repeats on each of its rows)."""
        return run_frame(self.records, self.stale)

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


def read_folder(folder: Path) -> tuple[list[RunRecord], list[RecordError]]:
    """Every ``runs/*.json`` of ``folder`` (the quarantine is not read), validated."""
    records, problems = [], []
    for path in sorted((folder / "runs").glob("*.json")):
        try:
            records.append(load_record(path))
        except RecordError as exc:
            problems.append(exc)
    return records, problems


def _identity(rec: RunRecord) -> tuple:
    return rec.method, rec.dataset, rec.spec.train_condition, rec.spec.seed, rec.spec.draw


def load(folder: Path, scope: SuiteScope | None = None) -> Results:
    """The results of ``folder`` within ``scope``. A run recorded twice (older and newer code) counts
    once: the fresh record wins, else the first in file order; the other is left out and counted."""
    scope = scope or SuiteScope.of_folder(folder)
    records, problems = read_folder(folder)
    inside = [r for r in records if scope.covers(r)]
    hashes = SourceHashes()
    stale_all = {r.run_id: reason for r in inside if (reason := r.stale_reason(hashes))}
    chosen: dict[tuple, RunRecord] = {}
    for r in inside:
        key = _identity(r)
        if key not in chosen or (chosen[key].run_id in stale_all and r.run_id not in stale_all):
            chosen[key] = r
    kept = sorted(chosen.values(), key=_identity)
    stale = {r.run_id: stale_all[r.run_id] for r in kept if r.run_id in stale_all}
    return Results(scope, kept, stale, problems, len(records) - len(inside), tidy(kept, stale),
                   superseded=len(inside) - len(kept))


def run_frame(records: list[RunRecord], stale: dict[str, str] | None = None) -> pd.DataFrame:
    stale = stale or {}
    rows = [{"run_id": r.run_id, "method": r.method, "base_method": r.spec.method,
             "overrides": json.dumps(r.spec.hparams, sort_keys=True), "dataset": r.dataset,
             "dataset_name": r.spec.dataset, "train_condition": r.spec.train_condition, "seed": r.spec.seed,
             "draw": r.spec.draw, "status": r.status, "stale": r.run_id in stale,
             "stale_reason": stale.get(r.run_id, ""), "path": str(r.path),
             "error": f"{r.error.get('type', '')}: {r.error.get('message', '')}" if not r.ok else ""}
            for r in records]
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "stale_reason", "path", "error"])


def _categorical(values: list[Any], codes: np.ndarray) -> pd.Categorical:
    """``values[codes]`` as a pandas Categorical with its categories in sorted order (so grouping sorts as
    it would on strings), built from codes: a column of 300k rows costs no Python string per row."""
    uniques = sorted(set(values))
    position = {v: i for i, v in enumerate(uniques)}
    recoded = np.array([position[v] for v in values], dtype=np.int64)
    return pd.Categorical.from_codes(recoded[codes] if len(codes) else codes, categories=uniques)


def tidy(records: list[RunRecord], stale: dict[str, str] | None = None) -> pd.DataFrame:
    """The tidy table of ``records`` (failed runs contribute no rows: they have no metrics). Per-row
    values are gathered as codes into the run list and the condition list, then expanded once."""
    ok = [r for r in records if r.ok]
    runs = run_frame(ok, stale)
    conditions: dict[tuple[str, str, int], int] = {}  # (split, key, place in the grid) -> code
    attrs: list[tuple[str, str, int, dict[str, Any]]] = []
    run_codes: list[np.ndarray] = []
    cond_codes: list[int] = []
    metric_names: list[str] = []
    values: list[float] = []

    def code(split: str, key: str, index: int, cond: dict[str, Any]) -> int:
        c = conditions.get((split, key, index))
        if c is None:
            c = conditions[(split, key, index)] = len(attrs)
            attrs.append((split, key, index, cond))
        return c

    n_metrics = len(CONDITION_METRICS)
    metric_codes: list[int] = []

    def _add_metrics(c: int, m: dict[str, Any]) -> None:
        present = [j for j, name in enumerate(CONDITION_METRICS) if name in m]
        cond_codes.extend([c] * len(present))
        metric_codes.extend(present)
        values.extend(m[CONDITION_METRICS[j]] for j in present)
    for i, rec in enumerate(ok):
        start = len(values)
        keys, metrics = rec.spec.test_conditions, rec.metrics
        try:  # every condition with every metric: one C-level gather per run
            values += itertools.chain.from_iterable(map(_ALL_METRICS, map(metrics.__getitem__, keys)))
            cond_codes += np.repeat([code("test", k, ci, rec.conditions[k]) for ci, k in enumerate(keys)],
                                    n_metrics).tolist()
            metric_codes += list(range(n_metrics)) * len(keys)
        except KeyError:
            del values[start:]
            del cond_codes[start:]
            del metric_codes[start:]
            for ci, key in enumerate(keys):
                _add_metrics(code("test", key, ci, rec.conditions[key]), metrics[key])
        for key, m in (rec.body.get("val_metrics") or {}).items():
            _add_metrics(code("val", key, -1, {}), m)
        c = code("run", "", -1, {})
        for name, v in _run_quantities(rec).items():
            cond_codes.append(c)
            metric_codes.append(len(metric_names) + n_metrics if name not in metric_names
                                else metric_names.index(name) + n_metrics)
            if name not in metric_names:
                metric_names.append(name)
            values.append(v)
        run_codes.append(np.full(len(values) - start, i, dtype=np.int64))
    rows = np.concatenate(run_codes) if run_codes else np.zeros(0, dtype=np.int64)
    cc = np.asarray(cond_codes, dtype=np.int64)
    columns: dict[str, Any] = {}
    for col in RUN_KEYS:
        series = runs[col].tolist()
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
    columns["metric"] = _categorical([*CONDITION_METRICS, *metric_names], np.asarray(metric_codes, dtype=np.int64))
    columns["value"] = np.asarray(values, dtype=float)
    return pd.DataFrame(columns, columns=COLUMNS)


def load_results(suite_or_folder: str | Path) -> pd.DataFrame:
    """The tidy table of a suite (its name, or a suite file) or of a results folder (every record in it),
    stale records flagged in the ``stale`` column. See the module docstring for the columns."""
    path = Path(suite_or_folder)
    if path.is_dir():
        return load(path).table
    scope = suite_scope(str(suite_or_folder))
    return load(scope.results_dir, scope).table
