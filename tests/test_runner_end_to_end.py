"""The runner through the command line: records, resume, failures, kill and restart, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, TEST_PLUGINS, run_cli, write_suite


def records(results: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))}


def test_run_writes_records_and_resume_trains_nothing(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"])
    first = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert first.returncode == 0, first.stderr
    recs = records(tmp_path / "res")
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs.values())
    rec = next(iter(recs.values()))
    conditions = set(rec["metrics"])
    assert {"clean", "missing_modality[m0]", "missing_modality[m2]", "random_missing[0.3]"} <= conditions
    for key in ("accuracy", "macro_f1", "nll", "ece", "brier"):
        assert 0.0 <= rec["metrics"]["clean"][key] < 10
    assert rec["clock"] == "perf_counter" and rec["timings"]["fit_seconds"] > 0
    assert rec["n_parameters"] > 0 and rec["flops"]["inference_per_sample"] > 0
    assert (tmp_path / "res" / "leaderboard.md").exists()

    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "res" / "runs").glob("*.json")}
    second = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert second.returncode == 0
    assert "done 0, skipped 2" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_broken_methods_are_recorded_as_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "raises_in_fit", "returns_nan", "wrong_shape", "late_fusion"])
    env = {"BENCHMARK_METHODS_PATH": str(TEST_PLUGINS)}
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress", "--skip-check",
                   extra_env=env)
    assert done.returncode == 1
    assert "failed 3" in done.stdout and "deliberate failure inside fit" in done.stdout
    by_method = {r["spec"]["method"]: r for r in records(tmp_path / "res").values()}
    assert by_method["early_fusion"]["status"] == by_method["late_fusion"]["status"] == "ok"
    assert by_method["raises_in_fit"]["error"]["type"] == "RuntimeError"
    assert by_method["returns_nan"]["error"]["type"] == "InvalidPrediction"
    assert "shape" in by_method["wrong_shape"]["error"]["message"]
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "Failed runs" in board and "raises_in_fit" in board
    # Failed runs are not silently retried, and the exit code still says so.
    again = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress", "--skip-check",
                    extra_env=env)
    assert again.returncode == 1 and "not retried" in again.stdout


def test_killed_sweep_resumes_with_no_corrupt_or_missing_record(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"], seeds=[0, 1, 2, 3])
    res = tmp_path / "res"
    cmd = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(res), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((res / "runs").glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_with = len(list((res / "runs").glob("*.json")))
    assert 2 <= killed_with < 8, "the kill should land in the middle of the sweep"
    again = run_cli("run", "--suite", str(suite), "--results", str(res), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"skipped {killed_with}" in again.stdout
    recs = records(res)
    assert len(recs) == 8 and all(r["status"] == "ok" for r in recs.values())


def test_same_spec_and_seed_in_two_fresh_processes_give_identical_metrics(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"])
    for name in ("a", "b"):
        done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / name), "--no-progress")
        assert done.returncode == 0, done.stderr
    a, b = records(tmp_path / "a"), records(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["metrics"] == b[key]["metrics"]
        assert [e["train_loss"] for e in a[key]["epoch_log"]] == [e["train_loss"] for e in b[key]["epoch_log"]]


def test_unknown_names_get_a_clear_error(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["no_such_method"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"))
    assert done.returncode == 2 and "no method named 'no_such_method'" in done.stderr and "known:" in done.stderr
    done = run_cli("run", "--suite", "no_such_suite")
    assert done.returncode == 2 and "known suites" in done.stderr


def test_two_methods_are_shown_byte_identical_inputs_condition_by_condition(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"])
    text = suite.read_text().replace(
        'test_conditions = ["clean", "missing_modality[*]", "random_missing[0.3]"]',
        'test_conditions = ["clean", "random_missing[0.3]", "missing_pattern[*]", "gaussian_noise[m0,3]", '
        '"mean_shift[m1,2]", "correlation_shift[m2,any_class]", "label_shift[0.4]", "mnar_value[m0,0.2]"]')
    suite.write_text(text)
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 0, done.stderr
    a, b = sorted(records(tmp_path / "res").values(), key=lambda r: r["spec"]["method"])
    assert a["spec"]["method"] != b["spec"]["method"]
    assert a["input_sha256"] == b["input_sha256"] and len(a["input_sha256"]) == 7 + 7
    hashes = a["input_sha256"]
    assert hashes["missing_pattern[m0+m1+m2]"] == hashes["clean"]  # all present is the clean input
    assert len(set(hashes.values())) == len(hashes) - 1  # every other condition differs


def test_a_wrong_protocol_parameter_stops_before_any_training(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    suite.write_text(suite.read_text().replace('"random_missing[0.3]"', '"random_missing[1.5]"'))
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 2
    assert "random_missing: parameter rate=1.5 is not allowed; allowed: rate: a number in (0, 1]" in done.stderr
    assert not (tmp_path / "res" / "runs").exists()


def test_smoke_suite_on_a_dask_local_cluster_gives_the_same_records_as_the_serial_backend(tmp_path: Path) -> None:
    serial = run_cli("run", "--suite", "smoke", "--results", str(tmp_path / "serial"), "--no-progress")
    dask = run_cli("run", "--suite", "smoke", "--results", str(tmp_path / "dask"), "--no-progress",
                   "--backend", "dask", "--workers", "2")
    assert serial.returncode == 0 and dask.returncode == 0, dask.stderr
    a, b = records(tmp_path / "serial"), records(tmp_path / "dask")
    assert a.keys() == b.keys() and len(a) == 7  # every method, one seed
    for key in a:
        for part in ("status", "metrics", "val_metrics", "input_sha256", "n_parameters", "flops"):
            assert a[key][part] == b[key][part], (key, part)
    again = run_cli("run", "--suite", "smoke", "--results", str(tmp_path / "dask"), "--no-progress",
                    "--backend", "dask")
    assert "done 0, skipped 7" in again.stdout  # resume works the same with dask


def test_a_task_that_kills_its_dask_worker_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "kills_its_worker", "raises_in_fit", "late_fusion"], seeds=[0, 1])
    env = {"BENCHMARK_METHODS_PATH": str(TEST_PLUGINS)}
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   "--skip-check", "--backend", "dask", "--workers", "2", extra_env=env)
    assert done.returncode == 1 and "failed 4" in done.stdout, done.stdout + done.stderr
    recs = list(records(tmp_path / "res").values())
    assert len(recs) == 8
    status = {(r["spec"]["method"], r["spec"]["seed"]): r["status"] for r in recs}
    assert all(status[(m, s)] == "ok" for m in ("early_fusion", "late_fusion") for s in (0, 1)), status
    killed = [r for r in recs if r["spec"]["method"] == "kills_its_worker"]
    assert all("the task did not finish" in r["error"]["message"] for r in killed)
