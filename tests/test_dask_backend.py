"""The Dask backend's scheduling order and its workers' thread settings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmark.dask_backend import dask_client, forkserver_available, next_run


def _run(method: str, dataset: str = "d", seed: int = 0) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(method=method, dataset=dataset, seed=seed))


def test_runs_of_pairs_not_seen_finishing_go_first_in_plan_order_then_the_longest() -> None:
    pending = [_run("a", seed=0), _run("a", seed=1), _run("b", seed=0), _run("c", seed=0), _run("c", seed=1),
               _run("b", seed=1)]
    seconds = {("a", "d"): [1.0, 3.0], ("c", "d"): [5.0]}
    order = []
    while pending:
        r = next_run(pending, seconds)
        order.append((r.spec.method, r.spec.seed))
    assert order == [("b", 0), ("b", 1), ("c", 0), ("c", 1), ("a", 0), ("a", 1)]


def test_next_run_takes_every_pending_run_exactly_once() -> None:
    pending = [_run(m, ds, s) for m in "xyz" for ds in ("p", "q") for s in range(3)]
    expected = {(r.spec.method, r.spec.dataset, r.spec.seed) for r in pending}
    seconds: dict = {}
    taken = []
    while pending:
        r = next_run(pending, seconds)
        seconds.setdefault((r.spec.method, r.spec.dataset), []).append(len(taken) % 4)
        taken.append((r.spec.method, r.spec.dataset, r.spec.seed))
    assert sorted(taken) == sorted(expected)


def _thread_settings() -> tuple:
    import os
    import sys

    preloaded = "benchmark.dask_preload" in sys.modules  # before this task imports anything
    from threadpoolctl import threadpool_info

    return os.environ.get("OMP_NUM_THREADS"), sorted({d["num_threads"] for d in threadpool_info()}), preloaded


@pytest.mark.skipif(not forkserver_available(), reason="no forkserver on this platform: workers are spawned")
def test_local_cluster_workers_are_forked_with_the_suite_loaded_and_one_blas_thread() -> None:
    with dask_client(2) as client:
        settings = client.run(_thread_settings)
    assert len(settings) == 2
    for env, blas_threads, preloaded in settings.values():
        assert env == "1" and blas_threads == [1] and preloaded, settings
