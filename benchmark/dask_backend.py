"""The Dask backend: each run is an independent task; the client writes the records.

Two things keep its fixed cost low on a small machine, both measured with ``python -m benchmark.perf
--sweep`` (numbers in the README):

- The workers are forked from a *forkserver* that imported the suite once (torch, the registry and
  every method) while this process was still importing and planning: ``warm_forkserver`` starts it first
  thing, so a LocalCluster's start no longer waits for each worker to import torch on its own.
- Each worker runs its runs in children forked from itself, under the suite's limits
  (``benchmark.isolation``): a run that hangs or grows too large is stopped there, and the worker goes on.
- Runs go out longest-expected-first (``next_run``), learned from the runs that finished: the last
  long run no longer starts when every other worker has run dry.

Nothing here imports torch or distributed at module level, so the CLI can warm the forkserver before
its own imports.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: What a worker imports once, in the forkserver, before it is forked; first of all its own process group
#: (``benchmark.own_process_group``: Ctrl-C in the terminal then reaches the sweep's process alone).
PRELOAD = ("benchmark.own_process_group", "distributed", "benchmark.dask_preload")
#: What the serial backend's forkserver imports: each run of a serial sweep is a child forked from it
#: (``benchmark.isolation``), so a run starts with torch, the engine and the plug-ins loaded.
SERIAL_PRELOAD = ("benchmark.own_process_group", "benchmark.dask_preload")

#: One BLAS/OpenMP thread per worker (TOOLCHAIN.md), set where each worker's libraries are loaded: in the
#: forkserver, or before each spawned worker starts where forkserver is not available. Without
#: MALLOC_TRIM_THRESHOLD_, which made the workers 1.5x slower here.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

#: - profiler and GIL monitor off: they sample the running task every 10 ms and 1 ms, taking the GIL from
#:   a training loop of small ops (~8% slower runs here), for a dashboard this backend does not start;
#: - the event loop's tick and the memory and system monitors at 1 s instead of 20, 100 and 500 ms: the
#:   same wake-ups, fewer of them, beside a run that needs both cores;
#: - allowed-failures 0: a task whose worker died is not retried on another (it would kill that one too);
#: - worker-saturation 1.0: a one-thread worker holds one task, never a second queued behind it, which a
#:   run that kills its worker would take down with it (with the default 1.1, two tasks fit on one worker
#:   while the other is still starting).
DASK_CONFIG: dict[str, Any] = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "1s",
}


def forkserver_available() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()


def warm_forkserver(preload: tuple[str, ...] = PRELOAD) -> bool:
    """Start the forkserver now, in the background, importing ``preload`` with one BLAS thread; a
    LocalCluster started later in this process forks its workers from it, a serial sweep its runs. Returns
    False (the workers will be spawned) where the platform has no forkserver. A forkserver already running
    is kept (with what it preloaded)."""
    if not forkserver_available():
        return False
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)  # the forkserver inherits this process's environment when it starts
    try:
        forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return True


def next_run(pending: list[Any], seconds: dict[tuple[str, str], list[float]]) -> Any:
    """Pop the pending run expected to take longest: one of a (method, dataset) pair not seen finishing
    yet first (in plan order), else the pair with the longest mean time so far. Longest-first leaves the
    short runs to fill the end of the sweep, where workers would otherwise wait on one long run."""
    def expected(i: int) -> tuple[bool, float, int]:
        spec = pending[i].spec
        times = seconds.get((spec.method, spec.dataset))
        return (times is None, sum(times) / len(times) if times else 0.0, -i)

    return pending.pop(max(range(len(pending)), key=expected))


@contextlib.contextmanager
def held_interrupt() -> Iterator[list[bool]]:
    """Hold Ctrl-C while a cluster starts or closes, then raise it: a cluster interrupted half-started
    cannot be closed cleanly (its workers' tracebacks and an atexit error followed). The list says
    whether one was held. Only the main thread can set signal handlers; elsewhere this holds nothing."""
    held: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None = None) -> Iterator[Any]:
    """A Client of the cluster at ``scheduler``, or of a LocalCluster of ``workers`` single-threaded
    processes forked from the warm forkserver (spawned where there is none), closed on exit."""
    import dask
    from dask.distributed import Client, LocalCluster

    config = {**DASK_CONFIG, "distributed.nanny.pre-spawn-environ": dict(WORKER_ENV)}
    if scheduler is None and warm_forkserver():  # at once when the CLI warmed it already
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(config):
        with held_interrupt():
            cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                          dashboard_address=None)
            client = Client(scheduler or cluster)
        interrupted = False
        try:
            yield client
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            with held_interrupt():
                if interrupted:  # runs in flight are abandoned: their workers' complaints are expected
                    logging.getLogger("distributed").setLevel(logging.CRITICAL)
                client.close()
                if cluster is not None:
                    cluster.close()


def run_on_dask(todo: list[Any], finish: Callable[[Any, dict[str, Any]], None], task: Callable[..., dict[str, Any]],
                task_args: tuple[Any, ...], workers: int, scheduler: str | None,
                take: Callable[[Any], bool] = lambda run: True) -> None:
    """Run ``task(run.payload(), *task_args)`` for every run of ``todo`` on ``dask_client(workers,
    scheduler)``; ``finish(run, body)`` gets each result here, as it comes. A task whose worker dies is a
    failed run; the sweep goes on. ``take(run)`` is asked just before a run is submitted (a claim: False
    leaves it to another sweep)."""
    from dask.distributed import as_completed

    with dask_client(workers, scheduler) as client:
        pending = list(todo)
        futures: dict[Any, Any] = {}
        seconds: dict[tuple[str, str], list[float]] = {}
        running = as_completed()

        def submit_while_slots_are_free() -> None:
            # No more tasks in flight than the cluster has threads: a worker never holds a queued run
            # beside the one it is running, so a task that kills its worker takes no other run with it
            # (the scheduler counts every task on a dead worker as a suspect).
            slots = max(1, sum(client.nthreads().values()))
            while pending and sum(not f.done() for f in futures) < slots:
                r = next_run(pending, seconds)
                if not take(r):
                    continue
                future = client.submit(task, r.payload(), *task_args, key=f"run-{r.run_id}", pure=False)
                futures[future] = r
                running.add(future)

        submit_while_slots_are_free()
        for future in running:
            r = futures.pop(future)
            submit_while_slots_are_free()  # first: the worker that finished waits for no record writing
            try:
                body = future.result()
            except Exception as exc:  # noqa: BLE001 - a killed worker or a lost task is a failed run
                body = {"spec": r.spec.to_json(), "status": "failed",
                        "error": {"type": type(exc).__name__, "message": f"the task did not finish: {exc}",
                                  "traceback": ""}}
            if isinstance(body.get("wall_seconds"), (int, float)):
                seconds.setdefault((r.spec.method, r.spec.dataset), []).append(body["wall_seconds"])
            finish(r, body)
