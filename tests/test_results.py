"""Reading results back: invalid records are named and never counted, records of older code are shown as
stale, a sweep quarantines what is not a record of its run, ``verify`` re-runs records exactly, and the
tidy table is exported and loaded as the README shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import REPO, TEST_PLUGINS, run_cli, write_suite

import benchmark
from benchmark.records import RecordError, load_record
from benchmark.results import load, suite_scope


def _copy(runner_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(runner_folder, folder)
    return folder


def _record_of(folder: Path, method: str) -> Path:
    return sorted((folder / "runs").glob(f"{method}__*.json"))[0]


def test_invalid_records_are_named_with_their_reason_and_the_rebuild_completes(runner_folder: Path,
                                                                               tmp_path: Path) -> None:
    folder = _copy(runner_folder, tmp_path)
    runs = folder / "runs"
    good = _record_of(folder, "early_fusion")
    body = json.loads(good.read_text())
    other = json.loads(_record_of(folder, "late_fusion").read_text())
    bad = {
        "empty": {},
        "running": {**body, "status": "running"},
        "ok_without_metrics": {"spec": body["spec"], "run_id": "0" * 20, "status": "ok"},
        "another_runs_spec": {**body, "spec": other["spec"]},
    }
    for name, content in bad.items():
        rid = content.get("run_id", body["run_id"])
        (runs / f"{name}__x__{rid}.json").write_text(json.dumps(content))
    (runs / f"truncated__x__{body['run_id']}.json").write_text(good.read_text()[:500])
    done = run_cli("leaderboard", "--suite", str(folder / "runner.toml"), "--results", str(folder))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in [*bad, "truncated"]:
        assert f"{name}__x__" in done.stderr, name
    assert "is not valid JSON" in done.stderr and "status should be one of" in done.stderr
    assert "the file holds another run's record" in done.stderr
    board = (folder / "leaderboard.md").read_text()
    assert "not a valid record, left out" in board
    # The valid records still make the board: 3 seeds of each method per dataset.
    assert "| early_fusion |" in board
    for name in bad:
        try:
            load_record(next(runs.glob(f"{name}__*.json")))
        except RecordError as exc:
            assert exc.path.name.startswith(name) and exc.reason
        else:
            raise AssertionError(f"{name} validated")


def test_records_of_an_older_engine_are_shown_as_stale_not_dropped(runner_folder: Path, tmp_path: Path) -> None:
    folder = _copy(runner_folder, tmp_path)
    code = ("import sys, benchmark, benchmark.records as r; benchmark.ENGINE_VERSION = r.ENGINE_VERSION = 'next'; "
            "from benchmark.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "leaderboard", "--suite", str(folder / "runner.toml"),
                           "--results", str(folder)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    n = len(list((folder / "runs").glob("*.json")))
    assert f"{n} record(s) were made by older code" in done.stderr
    assert f"engine version {benchmark.ENGINE_VERSION}, now next" in done.stderr
    board = (folder / "leaderboard.md").read_text()
    assert "(3 stale)" in board and "| early_fusion |" in board


def test_a_changed_method_file_makes_its_records_stale(tmp_path: Path) -> None:
    method = tmp_path / "my_copy.py"
    source = (REPO / "methods" / "early_fusion.py").read_text()
    method.write_text(source.replace('name = "early_fusion"', 'name = "my_copy"').replace(
        "from ._blocks", "from benchmark.plugins_methods._blocks"))
    suite = write_suite(tmp_path, ["my_copy"])
    res = tmp_path / "res"
    done = run_cli("run", "--suite", str(suite), "--results", str(res), "--no-progress", "--method-file", str(method))
    assert done.returncode == 0, done.stderr
    assert "stale" not in (res / "leaderboard.md").read_text()
    method.write_text(method.read_text() + "\n# an edit\n")
    done = run_cli("leaderboard", "--suite", str(suite), "--results", str(res))
    assert done.returncode == 0, done.stderr
    assert "changed since the run" in done.stderr and "(1 stale)" in (res / "leaderboard.md").read_text()


def test_a_sweep_quarantines_a_file_that_is_not_a_record_of_its_run_and_redoes_the_run(runner_folder: Path,
                                                                                       tmp_path: Path) -> None:
    folder = _copy(runner_folder, tmp_path)
    victim = _record_of(folder, "late_fusion")
    victim.write_text('{"status": "ok"}')
    (folder / "runs" / ".late_fusion__left.tmp").write_text("half a record")
    done = run_cli("run", "--suite", str(folder / "runner.toml"), "--results", str(folder), "--no-progress",
                   "--methods", "late_fusion", "--method-file", str(TEST_PLUGINS / "broken_methods.py"))
    assert done.returncode == 0, done.stderr
    assert f"{victim}: not a valid record of its run" in done.stderr and "moved to" in done.stderr
    assert (folder / "runs" / "quarantine" / victim.name).read_text() == '{"status": "ok"}'
    assert "done 1, skipped 5" in done.stdout
    assert load_record(victim).ok  # redone, under the same name
    assert not list((folder / "runs").glob(".*.tmp"))


def test_verify_reproduces_records_and_fails_when_a_computing_module_changes_a_metric(runner_folder: Path,
                                                                                       tmp_path: Path) -> None:
    args = ["verify", "--suite", str(runner_folder / "runner.toml"), "--results", str(runner_folder), "--sample", "2"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 2 re-run record(s) reproduce" in done.stdout and "; exact)" in done.stdout
    # A change to how the runner scores predictions (as a refactor might make by mistake): verify fails.
    code = ("import sys, benchmark.metrics as m; original = m.all_metrics\n"
            "def changed(p, y):\n    out = original(p, y); out['nll'] += 1e-9; return out\n"
            "m.all_metrics = changed\nfrom benchmark.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIFF" in done.stdout and "nll" in done.stdout and "bump ENGINE_VERSION" in done.stdout


def test_export_writes_the_table_that_load_results_returns(runner_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    done = run_cli("export", "--suite", str(runner_folder / "runner.toml"), "--results", str(runner_folder),
                   "--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    exported = pd.read_csv(out)
    table = benchmark.load_results(runner_folder)
    assert len(exported) == len(table) and list(exported.columns) == list(table.columns)
    assert (exported["value"].to_numpy() == table["value"].to_numpy()).all()
    scope = suite_scope(str(runner_folder / "runner.toml"), runner_folder)
    assert len(load(runner_folder, scope).records) == 18  # 3 methods x 2 datasets x 3 seeds, failures included
