"""A sweep: plan the runs of a suite, skip those with a record (resume), run the rest, report.

Records are written atomically by this process, one per run, as soon as the run ends, so a sweep killed
at any point loses at most the run in flight. A failed run is recorded and the sweep goes on."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from benchmark import hparams, registry
from benchmark.data import Prepared
from benchmark.execution import execute
from benchmark.protocols import condition_versions
from benchmark.records import RunSpec, engine_hash, read_record, record_path, run_id, write_atomic
from benchmark.suites import Suite


@dataclass(frozen=True)
class PlannedRun:
    spec: RunSpec
    run_id: str
    path: Path


@dataclass
class SweepSummary:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    failed_before: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def text(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped} (already recorded), failed {len(self.failed)}, "
                 f"wall time {self.wall_seconds:.1f} s"]
        lines += [f"  FAILED  {f}" for f in self.failed]
        if self.failed_before:
            lines.append(f"{len(self.failed_before)} run(s) failed in an earlier sweep and were not retried "
                         "(add --retry-failed to run them again):")
            lines += [f"  FAILED  {f}" for f in self.failed_before]
        return "\n".join(lines)


class DataCache:
    """Each dataset (with its parameters) is loaded once per process."""

    def __init__(self) -> None:
        self._loaded: dict[str, Prepared] = {}

    def get(self, name: str, params: dict[str, Any]) -> Prepared:
        key = f"{name}|{sorted(params.items())}"
        if key not in self._loaded:
            self._loaded[key] = registry.get("dataset", name).cls(**params).load()
        return self._loaded[key]


def plan(suite: Suite, results: Path, cache: DataCache, methods: Iterable[str] | None = None,
         datasets: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list[PlannedRun]:
    """Every run of the suite (optionally narrowed), with its run_id and record path."""
    method_names = list(methods) if methods else suite.methods
    seed_list = list(seeds) if seeds is not None else suite.seeds
    engine = engine_hash()
    runs = []
    for dname, params in suite.dataset_entries(list(datasets) if datasets else None):
        dplugin = registry.get("dataset", dname)
        data = cache.get(dname, params)
        grid = suite.test_grid(data.info)
        tests = tuple(c.key for c in grid)
        train_grid = suite.train_grid(data.info)
        versions = "|".join(condition_versions(grid, "test") + condition_versions(train_grid, "train"))
        for mname, draw_index in itertools.product(method_names, range(suite.hparam_draws)):
            mplugin = registry.get("method", mname)
            values = {**hparams.draw(mplugin.cls.Hparams, mname, draw_index), **suite.hparams.get(mname, {})}
            for train_cond, seed in itertools.product((c.key for c in train_grid), seed_list):
                spec = RunSpec(method=mname, dataset=dname, seed=int(seed), train_condition=train_cond,
                               hparams=dict(values), dataset_params=params, budget=vars(suite.budget).copy(),
                               test_conditions=tests, draw=draw_index)
                rid = run_id(spec, mplugin.source_hash + versions, dplugin.source_hash, data.checksum, engine)
                runs.append(PlannedRun(spec, rid, record_path(results, spec, rid)))
    return runs


def stored_records(runs: list[PlannedRun]) -> list[dict[str, Any]]:
    """The readable records of the planned runs that have one (the leaderboard's and figures' input)."""
    return [rec for rec in (read_record(r.path) for r in runs if r.path.exists()) if rec is not None]


def run_sweep(runs: list[PlannedRun], cache: DataCache, device: torch.device, retry_failed: bool = False,
              threads: int = 1, progress: bool = True, backend: str = "serial", workers: int = 2,
              scheduler: str | None = None) -> SweepSummary:
    """Run what has no record yet. The records are written here, by this process, atomically, as each
    run finishes, whatever the backend: a killed sweep loses at most the runs in flight."""
    summary = SweepSummary()
    t0 = time.time()
    todo = []
    for r in runs:
        rec = read_record(r.path)
        if rec is None or (rec.get("status") == "failed" and retry_failed):
            todo.append(r)
        else:
            summary.skipped += 1
            if rec.get("status") == "failed":
                summary.failed_before.append(f"{r.spec.label}: {rec.get('error', {}).get('message', '')}")
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=sys.stderr, disable=not progress or not todo)

    def finish(r: PlannedRun, body: dict[str, Any]) -> None:
        body["run_id"] = r.run_id
        write_atomic(r.path, body)
        if body["status"] == "ok":
            summary.done += 1
        else:
            summary.failed.append(f"{r.spec.label}: {body['error']['type']}: {body['error']['message']}")
        bar.set_postfix_str(f"{r.spec.method}/{r.spec.dataset}/s{r.spec.seed}")
        bar.update(1)

    if backend == "serial":
        for r in todo:
            finish(r, run_task(r.spec.to_json(), [], str(device), threads, cache))
    elif backend == "dask":
        if todo:  # nothing to run: no cluster to start
            from benchmark.dask_backend import run_on_dask

            run_on_dask(todo, finish, run_task, ([str(p) for p in registry.METHOD_FILES], str(device), threads),
                        workers, scheduler)
    else:
        raise ValueError(f"unknown backend {backend!r}; use serial or dask")
    bar.close()
    summary.wall_seconds = time.time() - t0
    return summary


_WORKER_CACHE = DataCache()


def run_task(spec_json: dict[str, Any], method_files: list[str], device: str, threads: int,
             cache: DataCache | None = None) -> dict[str, Any]:
    """One run, as a task: everything it needs travels as plain data, so it runs the same in this
    process or on a Dask worker. Returns the record body (never raises for a method's failure)."""
    for f in method_files:
        registry.add_method_file(Path(f))
    spec = RunSpec.from_json(spec_json)
    data = (cache or _WORKER_CACHE).get(spec.dataset, spec.dataset_params)
    body = execute(spec, registry.get("method", spec.method).cls, data, torch.device(device), threads)
    body["dataset_checksum"] = data.checksum
    return body
