"""The tidy table's rows gathered from records in plain Python (no numpy, no pandas), and which records
of a folder a suite's results keep: imported by the process that reads the record files for a rebuild
(benchmark.prefetch) as well as by benchmark.results, which makes the table from what is gathered here."""

from __future__ import annotations

import itertools
import json
import operator
from typing import Any

from benchmark.records import RunRecord, SourceHashes
from benchmark.scope import SuiteScope

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


def _identity(rec: RunRecord) -> tuple:
    return rec.method, rec.dataset, rec.spec.train_condition, rec.spec.seed, rec.spec.draw


def choose(records: list[RunRecord], scope: SuiteScope) -> tuple[list[RunRecord], dict[str, str], int]:
    """The records ``scope`` keeps, sorted by run identity (a run recorded twice counts once: the fresh
    record wins, else the first in file order), why each kept one is stale, and how many are in scope."""
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
    return kept, stale, len(inside)


def run_columns(records: list[RunRecord], stale: dict[str, str]) -> dict[str, list[Any]]:
    """The run keys of ``records``, a list per column (``RUN_KEYS``)."""
    return {"run_id": [r.run_id for r in records], "method": [r.method for r in records],
            "base_method": [r.spec.method for r in records],
            "overrides": [json.dumps(r.spec.hparams, sort_keys=True) for r in records],
            "dataset": [r.dataset for r in records], "dataset_name": [r.spec.dataset for r in records],
            "train_condition": [r.spec.train_condition for r in records], "seed": [r.spec.seed for r in records],
            "draw": [r.spec.draw for r in records], "status": [r.status for r in records],
            "stale": [r.run_id in stale for r in records]}


def gather(records: list[RunRecord], stale: dict[str, str] | None = None) -> dict[str, Any]:
    """The rows of the tidy table of ``records`` as codes into the run list and the condition list:
    ``values``, ``cond_codes`` and ``metric_codes`` (one per row), ``rows_per_run``, the conditions
    (``attrs``: split, key, place in the grid, resolved condition), the run quantities' names and the run
    keys (``runs``). Plain lists, dicts and tuples (marshal can send them between processes)."""
    ok = [r for r in records if r.ok]
    conditions: dict[tuple[str, str, int], int] = {}  # (split, key, place in the grid) -> code
    attrs: list[tuple[str, str, int, dict[str, Any]]] = []
    rows_per_run: list[int] = []
    cond_codes: list[int] = []
    metric_codes: list[int] = []
    metric_names: dict[str, int] = {}  # run quantities, numbered after the condition metrics
    values: list[float] = []

    def code(split: str, key: str, index: int, cond: dict[str, Any]) -> int:
        c = conditions.get((split, key, index))
        if c is None:
            c = conditions[(split, key, index)] = len(attrs)
            attrs.append((split, key, index, cond))
        return c

    n_metrics = len(CONDITION_METRICS)
    # A grid of test conditions (the keys of a run, in order) -> its condition codes, one per metric:
    # runs of a suite share a few grids, so codes are looked up once per grid.
    grid_codes: dict[tuple[str, ...], list[int]] = {}
    grid_metrics: dict[int, list[int]] = {}

    def _add_metrics(c: int, m: dict[str, Any]) -> None:
        present = [j for j, name in enumerate(CONDITION_METRICS) if name in m]
        cond_codes.extend([c] * len(present))
        metric_codes.extend(present)
        values.extend(m[CONDITION_METRICS[j]] for j in present)
    for rec in ok:
        start = len(values)
        keys, metrics = rec.spec.test_conditions, rec.metrics
        try:  # every condition with every metric: one C-level gather per run
            values += itertools.chain.from_iterable(map(_ALL_METRICS, map(metrics.__getitem__, keys)))
            if keys not in grid_codes:
                codes = [code("test", k, ci, rec.conditions[k]) for ci, k in enumerate(keys)]
                grid_codes[keys] = [c for c in codes for _ in range(n_metrics)]
            cond_codes += grid_codes[keys]
            if len(keys) not in grid_metrics:
                grid_metrics[len(keys)] = list(range(n_metrics)) * len(keys)
            metric_codes += grid_metrics[len(keys)]
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
            metric_codes.append(metric_names.setdefault(name, len(metric_names)) + n_metrics)
            values.append(v)
        rows_per_run.append(len(values) - start)
    return {"values": values, "cond_codes": cond_codes, "metric_codes": metric_codes, "rows_per_run": rows_per_run,
            "attrs": attrs, "metric_names": list(metric_names), "runs": run_columns(ok, stale or {})}
