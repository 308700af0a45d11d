"""Limits per run, enforced (issue 22, point 2): each run executes in a child process; one past its suite's
time limit is stopped and recorded as ``TimeLimit``, one past its memory limit as ``MemoryLimit``, one whose
process dies as ``RunProcessDied``; the sweep goes on, a resume does not wait on them again, and a run in
a child computes exactly what it computes in the sweep's own process."""

from __future__ import annotations

import json
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TEST_PLUGINS, run_cli, write_suite

from benchmark.isolation import RunLimits, call_in_child, memory_mb, start_method
from benchmark.results import load, suite_scope
from benchmark.suites import load_suite

STARTS = ["fork", "forkserver"]


@pytest.fixture(scope="module")
def _warm_forkserver() -> None:
    """The forkserver the serial backend uses for GPU and multi-thread runs, with the suite preloaded."""
    from benchmark.dask_backend import SERIAL_PRELOAD, warm_forkserver

    warm_forkserver(SERIAL_PRELOAD)


@pytest.mark.parametrize("start", STARTS)
def test_a_child_returns_its_result_and_reports_its_exception(start: str, _warm_forkserver: None) -> None:
    done = call_in_child(sum, ([1, 2, 3],), RunLimits(), start)
    assert done.value == 6 and done.error is None
    done = call_in_child(int, ("not a number",), RunLimits(), start)
    assert done.value is None and done.error["type"] == "ValueError" and "not a number" in done.error["message"]


@pytest.mark.parametrize("start", STARTS)
def test_a_child_past_its_time_limit_is_stopped_soon_after(start: str, _warm_forkserver: None) -> None:
    t0 = time.monotonic()
    done = call_in_child(time.sleep, (60,), RunLimits(seconds=0.5), start)
    assert done.error["type"] == "TimeLimit" and "time limit of 0.5 s" in done.error["message"]
    assert 0.5 <= time.monotonic() - t0 < 5  # stopped, not waited for


def test_a_child_past_its_memory_limit_is_stopped_near_the_limit() -> None:
    limit = (memory_mb(os.getpid()) or 500.0) + 300.0  # a fork starts with its parent's pages resident
    done = call_in_child(operator.mul, (b"x", 3 * 2**30), RunLimits(memory_mb=limit), "fork")  # 3 GiB, touched
    assert done.error["type"] == "MemoryLimit", done.error
    assert limit < done.peak_rss_mb < limit + 1024  # it never came near 3 GiB


@pytest.mark.parametrize(("target", "args", "says"), [
    (os._exit, (3,), "exit code 3"),
    (signal.raise_signal, (signal.SIGKILL,), "killed by signal SIGKILL (SIGKILL: the kernel's out-of-memory killer"),
])
def test_a_child_that_dies_is_reported_with_how_it_died(target, args, says: str) -> None:
    done = call_in_child(target, args, RunLimits(seconds=30), "fork")
    assert done.error["type"] == "RunProcessDied" and says in done.error["message"], done.error


def test_a_child_ends_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    code = ("import sys, time\nfrom benchmark.isolation import _Child\n"
            "child = _Child(time.sleep, (600,), 'fork')\nprint(child.pid, flush=True)\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def gone() -> bool:
        try:
            return Path(f"/proc/{child_pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return True

    deadline = time.monotonic() + 10
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = gone()
    if not ended:
        os.kill(child_pid, signal.SIGKILL)  # leave nothing behind, then fail
    assert ended, "the run's process outlived the sweep that started it"


def test_forked_runs_are_the_default_only_where_forking_is_safe() -> None:
    if sys.platform.startswith("linux"):
        assert start_method("cpu", 1) == "fork" and start_method(worker=True) == "fork"
    # A fork of a process that ran OpenMP with 2 threads hangs in its first parallel op; CUDA cannot be forked.
    assert start_method("cpu", 2) != "fork" and start_method("cuda", 1) != "fork"


@pytest.mark.parametrize("start", STARTS)
def test_a_run_in_a_child_computes_exactly_what_it_computes_in_process(tmp_path: Path, start: str,
                                                                       _warm_forkserver: None) -> None:
    from benchmark.sweep import DataCache, plan, run_task, run_task_limited

    cache = DataCache()
    (run,) = plan(load_suite(str(write_suite(tmp_path, ["early_fusion"]))), tmp_path / "res", cache)
    here = json.loads(json.dumps(run_task(run.payload(), [], "cpu", 1, cache)))
    there = run_task_limited(run.payload(), [], "cpu", 1, start, cache)
    assert here["status"] == there["status"] == "ok"
    for part in ("metrics", "val_metrics", "input_sha256", "reliability", "n_parameters", "flops", "epoch_log"):
        if part == "epoch_log":  # its per-epoch seconds are timings; everything else in it is computed
            here[part] = [{k: v for k, v in e.items() if k != "seconds"} for e in here[part]]
            there[part] = [{k: v for k, v in e.items() if k != "seconds"} for e in there[part]]
        assert here[part] == there[part], part
    assert there["limits"] == {"seconds": 1800.0, "memory_mb": 8192.0}
    assert there["peak_memory_mb"] >= max(there["memory_mb"].values())


LIMITED = """
[limits]
seconds = {seconds}
memory_mb = 1500
"""


def _records(folder: Path) -> dict[str, dict]:
    return {(b := json.loads(p.read_text()))["spec"]["method"]: b for p in (folder / "runs").glob("*.json")}


@pytest.fixture(scope="module")
def without_hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The honest methods swept alone, serially, under the default limits."""
    folder = tmp_path_factory.mktemp("without")
    suite = write_suite(folder, ["early_fusion", "late_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--no-progress",
                   extra_env={"BENCHMARK_DATA": str(tmp_path_factory.getbasetemp() / "data")})
    assert done.returncode == 0, done.stderr
    return _records(folder / "res")


@pytest.mark.parametrize("backend", ["serial", "dask"])
def test_a_hanging_method_and_a_memory_hog_are_stopped_and_the_sweep_goes_on(
        tmp_path: Path, backend: str, without_hostile: dict[str, dict]) -> None:
    seconds = 6  # far above an honest run here (~0.3 s), far below the test's patience
    suite = write_suite(tmp_path, ["hangs", "hog", "early_fusion", "late_fusion"])
    suite.write_text(suite.read_text() + LIMITED.format(seconds=seconds))
    # --skip-check: the point is containment at run time (check-method would refuse both before training).
    flags = ["--no-progress", "--skip-check", "--method-file", str(TEST_PLUGINS / "hostile_methods.py"),
             "--backend", backend]
    res = tmp_path / "res"
    done = run_cli("run", "--suite", str(suite), "--results", str(res), *flags)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    recs = _records(res)
    assert recs["hangs"]["status"] == "failed" and recs["hangs"]["error"]["type"] == "TimeLimit"
    assert f"time limit of {seconds} s" in recs["hangs"]["error"]["message"]
    assert recs["hog"]["status"] == "failed" and recs["hog"]["error"]["type"] == "MemoryLimit"
    assert 1500 < recs["hog"]["peak_memory_mb"] < 1500 + 1024  # stopped near the limit, not at 4 GB
    for method in ("early_fusion", "late_fusion"):  # the honest runs: exactly as in a sweep without the others
        for part in ("status", "metrics", "val_metrics", "input_sha256"):
            assert recs[method][part] == without_hostile[method][part], (method, part)
    board = (res / "leaderboard.md").read_text()
    assert "peak memory (MB)" in board and "TimeLimit" in board and "MemoryLimit" in board
    table = load(res, suite_scope(str(suite), res)).table
    peaks = table[table["metric"] == "peak_memory_mb"]
    assert dict(zip(peaks["method"].astype(str), peaks["value"], strict=True)) == {
        m: recs[m]["peak_memory_mb"] for m in ("early_fusion", "late_fusion")}

    t0 = time.monotonic()
    again = run_cli("run", "--suite", str(suite), "--results", str(res), *flags, "--no-leaderboard")
    assert again.returncode == 1 and "done 0, skipped 4" in again.stdout, again.stdout + again.stderr
    assert "2 run(s) failed in an earlier sweep and were not retried" in again.stdout
    assert time.monotonic() - t0 < 60  # no wait on the hanging run (each CLI start takes a few seconds here)

    if backend == "serial":  # --retry-failed runs a stopped run again (the hog: stopped again, in seconds)
        retried = run_cli("run", "--suite", str(suite), "--results", str(res), *flags, "--no-leaderboard",
                          "--methods", "hog", "--retry-failed")
        assert "done 0, skipped 0" in retried.stdout and "MemoryLimit" in retried.stdout, retried.stdout


@pytest.mark.parametrize(("table", "message"), [
    ("seconds = 0", "limits.seconds = 0: must be a number > 0"),
    ('seconds = "long"', "limits.seconds = 'long': must be a number > 0"),
    ("memory_mb = 100", "limits.memory_mb = 100: must be a number > 256"),
    ("memory_mb = true", "limits.memory_mb = True"),
    ("minutes = 3", r"unknown limits key\(s\) \['minutes'\]"),
])
def test_a_wrong_limit_is_refused(tmp_path: Path, table: str, message: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    suite.write_text(suite.read_text() + f"\n[limits]\n{table}\n")
    with pytest.raises(ValueError, match=message):
        load_suite(str(suite))


def test_limits_are_read_and_change_neither_run_ids_nor_what_a_suite_covers(tmp_path: Path) -> None:
    from benchmark.sweep import DataCache, plan

    plain = write_suite(tmp_path, ["early_fusion"])
    (tmp_path / "limited").mkdir()
    limited = write_suite(tmp_path / "limited", ["early_fusion"])
    limited.write_text(limited.read_text() + "\n[limits]\nseconds = 90.5\nmemory_mb = 2048\n")
    assert load_suite(str(plain)).limits == RunLimits()
    assert load_suite(str(limited)).limits == RunLimits(seconds=90.5, memory_mb=2048)
    a, b = (plan(load_suite(str(s)), tmp_path / "res", DataCache()) for s in (plain, limited))
    assert [r.run_id for r in a] == [r.run_id for r in b] and b[0].payload()["limits"]["seconds"] == 90.5
    assert suite_scope(str(plain)) == suite_scope(str(limited))  # the light reader takes the key in its stride
