"""A sweep: plan the runs of a suite, skip those with a record (resume), run the rest, report.

Records are written atomically by this process, one per run, as soon as the run ends, so a sweep killed
at any point loses at most the run in flight. A failed run is recorded and the sweep goes on. Each run
executes in a child process under its suite's time and memory limits (``benchmark.isolation``), on both
backends: a run that hangs or grows past them is stopped and recorded as failed."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark import hparams, registry
from benchmark.claims_files import claim, release
from benchmark.console import LOG
from benchmark.contracts import hparams_from_dict
from benchmark.data import Prepared
from benchmark.execution import RunConditions, execute
from benchmark.isolation import RunLimits, call_in_child, start_method
from benchmark.protocols import condition_versions
from benchmark.records import (
    RECORD_VERSION,
    Provenance,
    RecordError,
    RunRecord,
    RunSpec,
    load_record,
    record_path,
    relative_to_checkout,
    run_id,
    write_atomic,
)
from benchmark.suites import MethodRow, Suite
from benchmark.version import ENGINE_VERSION


@dataclass(frozen=True)
class PlannedRun:
    spec: RunSpec
    run_id: str
    path: Path
    provenance: Provenance
    conditions: RunConditions
    limits: RunLimits = RunLimits()

    def payload(self) -> dict[str, Any]:
        """Everything a task needs, as plain data (it travels to Dask workers)."""
        return {"spec": self.spec.to_json(), "conditions": self.conditions.to_json(), "limits": self.limits.to_json()}


@dataclass
class SweepSummary:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    failed_before: list[str] = field(default_factory=list)
    claimed_elsewhere: int = 0
    wall_seconds: float = 0.0
    #: Runs this sweep had to do (not recorded before it started).
    to_do: int = 0

    def text(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped} (already recorded), failed {len(self.failed)}, "
                 f"wall time {self.wall_seconds:.1f} s"]
        lines += [f"  FAILED  {f}" for f in self.failed]
        if self.claimed_elsewhere:
            lines.append(f"{self.claimed_elsewhere} run(s) were being run by another sweep on this folder and were "
                         "left to it; run the same command again afterwards to pick up any it did not finish")
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
    only = list(methods) if methods else None
    rows = suite.rows(only)
    # A name the suite does not list (e.g. a --method-file's method) runs as a row of its own.
    rows += [MethodRow(m) for m in only or [] if all(m not in (r.row, r.name) for r in rows)]
    seed_list = list(seeds) if seeds is not None else suite.seeds
    runs = []
    for dname, params in suite.dataset_entries(list(datasets) if datasets else None):
        dplugin = registry.get("dataset", dname)
        data = cache.get(dname, params)
        grid = suite.test_grid(data.info)
        tests = tuple(c.key for c in grid)
        train_grid = suite.train_grid(data.info)
        versions = "|".join(condition_versions(grid) + condition_versions(train_grid))
        for row, draw_index in itertools.product(rows, range(suite.hparam_draws)):
            mname = row.name
            mplugin = registry.get("method", mname)
            values = {**hparams.draw(mplugin.cls.Hparams, mname, draw_index), **suite.hparams.get(mname, {}),
                      **row.overrides}
            provenance = Provenance(ENGINE_VERSION, relative_to_checkout(mplugin.path), mplugin.source_hash,
                                    relative_to_checkout(dplugin.path), dplugin.source_hash, data.checksum, versions)
            budget = vars(suite.budget).copy()
            if suite.param_budget is not None:  # the width that brings this method closest to the budget
                from benchmark.capacity import width_for_budget

                budget["width"], _ = width_for_budget(mplugin.cls, data.info, hparams_from_dict(
                    mplugin.cls.Hparams, values, mname), suite.param_budget)
            for train_cond, seed in itertools.product(train_grid, seed_list):
                spec = RunSpec(method=mname, dataset=dname, seed=int(seed), train_condition=train_cond.key,
                               hparams=dict(values), dataset_params=params, budget=dict(budget),
                               test_conditions=tests, draw=draw_index, label=row.label)
                rid = run_id(spec, provenance)
                runs.append(PlannedRun(spec, rid, record_path(results, spec, rid), provenance,
                                       RunConditions(train_cond, tuple(grid)), suite.limits))
    return runs


QUARANTINE = "quarantine"


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep: every run that finished has its record; ``summary`` says how many."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def record_state(run: PlannedRun) -> tuple[RunRecord | None, str]:
    """A planned run's valid record, or None and why there is none ("" when no file is at its path).
    Reads only: ``existing_record`` acts on the answer, a dry run only reports it."""
    if not run.path.exists():
        return None, ""
    try:
        rec = load_record(run.path)
    except RecordError as exc:
        return None, exc.reason
    if rec.run_id == run.run_id and rec.provenance is not None:
        return rec, ""  # parse_record checked that its spec and provenance hash to this run id
    return None, "it is not a record of this run"


def existing_record(run: PlannedRun, note: Callable[[str], None]) -> RunRecord | None:
    """The valid record of a planned run, or None (the run is to do). A file at its path that is not a
    valid record of this very run is moved aside to ``runs/quarantine/`` with a line saying why, so it
    never counts as done and is never lost."""
    rec, reason = record_state(run)
    if rec is not None or not reason:
        return rec
    target = run.path.parent / QUARANTINE / run.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run.path, target)
    note(f"{run.path}: not a valid record of its run ({reason}); moved to {target} and the run is redone")
    return None


def clean_temporary_files(runs_dir: Path) -> int:
    """Remove the temporary files that writers killed mid-write left behind (``.name.XXXX.tmp``)."""
    removed = 0
    for tmp in runs_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def run_sweep(runs: list[PlannedRun], cache: DataCache, device: torch.device, retry_failed: bool = False,
              threads: int = 1, progress: bool | str = True, backend: str = "serial", workers: int = 2,
              scheduler: str | None = None, expected: Callable[[str, str], float] | None = None) -> SweepSummary:
    """Run what has no record yet. The records are written here, by this process, atomically, as each
    run finishes, whatever the backend: a killed sweep loses at most the runs in flight. ``progress``:
    "bar", "lines" or "off" (True: a bar on a terminal, lines elsewhere); ``expected(row, dataset)`` gives
    the seconds a run is expected to take, which weigh the ETA (by default learned from the records
    found here). Ctrl-C raises ``SweepInterrupted`` with the summary so far."""
    from benchmark.progress import ExpectedTimes, Progress

    summary = SweepSummary()
    t0 = time.time()
    for folder in sorted({r.path.parent for r in runs}):
        clean_temporary_files(folder)
    todo = []
    seen: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        rec = existing_record(r, lambda line: LOG.info("note: %s", line))
        if rec is not None and isinstance(rec.body.get("wall_seconds"), int | float):
            seen.setdefault((r.spec.row, r.spec.dataset), []).append(float(rec.body["wall_seconds"]))
        if rec is None or (not rec.ok and retry_failed):
            todo.append(r)
        else:
            summary.skipped += 1
            if not rec.ok:
                summary.failed_before.append(f"{r.spec.describe}: {rec.error.get('message', '')}")
    summary.to_do = len(todo)
    expected = expected or ExpectedTimes(seen)
    if progress is True:
        progress = "bar" if sys.stderr.isatty() else "lines"
    parallel = workers if backend == "dask" and not scheduler else 1
    bar = Progress({r.run_id: expected(r.spec.row, r.spec.dataset) for r in todo}, progress or "off", parallel)

    def take(r: PlannedRun) -> bool:
        """Claim ``r`` unless another sweep runs it, or recorded it since this sweep looked."""
        if (not r.path.exists() or retry_failed) and claim(r.path):
            return True
        summary.claimed_elsewhere += 1
        bar.update(r.run_id, f"{r.spec.row}/{r.spec.dataset}/s{r.spec.seed}", "left to another sweep")
        return False

    def finish(r: PlannedRun, body: dict[str, Any]) -> None:
        # A run stopped before it returned has no body from the dataset: its card's metric is known here.
        body.setdefault("primary_metric", registry.get("dataset", r.spec.dataset).cls.card.primary_metric)
        body["run_id"] = r.run_id
        body["record_version"] = RECORD_VERSION
        body["provenance"] = r.provenance.to_json()
        write_atomic(r.path, body)
        release(r.path)
        seconds = body.get("wall_seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
        if body["status"] == "ok":
            summary.done += 1
            outcome = f"ok{took}"
        else:
            summary.failed.append(f"{r.spec.describe}: {body['error']['type']}: {body['error']['message']}")
            outcome = f"FAILED{took} ({body['error']['type']})"
            LOG.debug("%s failed: %s\n%s", r.spec.describe, body["error"].get("message", ""),
                      body["error"].get("traceback", ""))
        bar.update(r.run_id, f"{r.spec.row}/{r.spec.dataset}/{r.spec.train_condition}/s{r.spec.seed}", outcome)
        if interrupted:  # a Ctrl-C that Python swallowed (inside a fork's callbacks): honoured now
            raise KeyboardInterrupt

    files = [str(p) for p in registry.METHOD_FILES]
    try:
        with remembered_interrupt() as interrupted:
            if backend == "serial":
                start = start_method(device.type, threads)
                if todo:
                    prepare_fork_source(start, threads)
                for r in todo:
                    if take(r):
                        finish(r, run_task_limited(r.payload(), files, str(device), threads, start, cache))
            elif backend == "dask":
                if todo:  # nothing to run: no cluster to start
                    from benchmark.dask_backend import run_on_dask

                    run_on_dask(todo, finish, run_task_limited,
                                (files, str(device), threads, start_method(worker=True)), workers, scheduler, take)
            else:
                raise ValueError(f"unknown backend {backend!r}; use serial or dask")
    except KeyboardInterrupt:
        bar.close()
        summary.wall_seconds = time.time() - t0
        raise SweepInterrupted(summary) from None
    bar.close()
    summary.wall_seconds = time.time() - t0
    return summary


@contextlib.contextmanager
def remembered_interrupt() -> Iterator[list[bool]]:
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered: one that lands while a run's
    process is being forked is raised inside the fork's callbacks, where Python prints "Exception
    ignored" with a traceback and goes on, so the sweep would have ignored it; here it is remembered
    without the traceback and raised again after the next finished run. Only the main thread can set
    signal handlers; elsewhere nothing is remembered."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    def on_unraisable(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            seen.append(True)
        else:
            previous_hook(unraisable)

    previous, previous_hook = signal.signal(signal.SIGINT, on_interrupt), sys.unraisablehook
    sys.unraisablehook = on_unraisable
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook


def prepare_fork_source(start: str, threads: int) -> None:
    """Make the process the runs start from hold what every run would otherwise load for itself: this
    process where they are forked from it (torch's deterministic mode, which imports torch's compiler
    config, ~2-4 s; the git state), else the forkserver, started now where the CLI has not already."""
    if start == "fork":
        from benchmark import environment
        from benchmark.seeding import set_determinism

        set_determinism(threads)  # what the first in-process run used to do, for good, in this process
        environment.git_state()
        environment.cpu_name()
    elif start == "forkserver":
        from benchmark.dask_backend import SERIAL_PRELOAD, warm_forkserver

        warm_forkserver(SERIAL_PRELOAD)


_WORKER_CACHE = DataCache()
#: What a child process needs to find the plug-ins and the data exactly as the sweep's process does (a
#: forkserver keeps the environment it started with).
CHILD_ENVIRONMENT = ("BENCHMARK_DATA", "BENCHMARK_METHODS_PATH", "BENCHMARK_DATASETS_PATH")


def run_task_limited(payload: dict[str, Any], method_files: list[str], device: str, threads: int,
                     start: str | None = None, cache: DataCache | None = None) -> dict[str, Any]:
    """``run_task`` in a child process under the payload's limits (``benchmark.isolation``): the record body
    it returns, with the run's peak resident memory and its limits; or, for a run stopped at a limit or
    whose process died, a failed body saying so. Never raises for what the run does. A forked child reads
    its data from ``cache`` (this process's data, loaded here first so every run of a dataset shares one load)."""
    limits = RunLimits.from_json(payload.get("limits"))
    env = {k: os.environ.get(k) for k in CHILD_ENVIRONMENT}
    cache = cache or _WORKER_CACHE
    if (start or start_method()) == "fork":
        spec = payload["spec"]
        with contextlib.suppress(Exception):  # a dataset that fails to load fails its run, in the child
            cache.get(spec["dataset"], spec.get("dataset_params") or {})
    else:
        cache = None  # a forkserver's child loads its own (the cache would travel pickled)
    done = call_in_child(_run_task_in_child, (payload, method_files, device, threads, env, cache), limits, start)
    if done.value is not None:
        body = done.value
    else:  # stopped at a limit, or its process died: where it ran is known here
        from benchmark.environment import describe
        from benchmark.timing import Clock, MemoryMeter

        dev = torch.device(device)
        body = {"spec": payload["spec"], "status": "failed", "error": done.error, "wall_seconds": done.seconds,
                "environment": describe(dev), "clock": Clock(dev).name, "memory_meter": MemoryMeter(dev).name}
    # The peak of the run's process: the parent's readings of its resident high-water mark, and on the CPU
    # the meter's exact per-phase peaks (the readings are 50 ms apart).
    peaks = [done.peak_rss_mb] if done.peak_rss_mb is not None else []
    if str(body.get("memory_meter", "")).startswith("process"):
        peaks += [v for v in (body.get("memory_mb") or {}).values() if isinstance(v, int | float)]
    body["peak_memory_mb"] = max(peaks) if peaks else None
    body["limits"] = limits.to_json()
    return body


def _run_task_in_child(payload: dict[str, Any], method_files: list[str], device: str, threads: int,
                       env: dict[str, str | None], cache: DataCache | None) -> dict[str, Any]:
    """In the child: take the sweep's plug-in and data folders (a forkserver started with its own), run."""
    if any(os.environ.get(k) != v for k, v in env.items()):
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        registry.methods.cache_clear()
        registry.datasets.cache_clear()
        cache = DataCache()
    return run_task(payload, method_files, device, threads, cache)


def run_task(payload: dict[str, Any], method_files: list[str], device: str, threads: int,
             cache: DataCache | None = None) -> dict[str, Any]:
    """One run, as a task: everything it needs (``PlannedRun.payload``) travels as plain data, so it runs
    the same in this process or on a Dask worker. Returns the record body (never raises for a method's
    failure)."""
    for f in method_files:
        registry.add_method_file(Path(f))
    spec = RunSpec.from_json(payload["spec"])
    data = (cache or _WORKER_CACHE).get(spec.dataset, spec.dataset_params)
    body = execute(spec, registry.get("method", spec.method).cls, data, torch.device(device),
                   RunConditions.from_json(payload["conditions"]), threads)
    # The metric the dataset's leaderboard ranks on, from its card: a rebuild reads it here, not from the loader.
    body["primary_metric"] = registry.get("dataset", spec.dataset).cls.card.primary_metric
    body["dataset_checksum"] = data.checksum
    return body
