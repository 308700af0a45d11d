"""The command line's manners (issue 23, point 5): --version, -v/-q, run --dry-run, a log file per sweep,
errors that name the flag, an ETA weighted by each run's expected time, plain progress lines when output
is not a terminal, and a last line with the winners per dataset and the page."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, run_cli, write_suite
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.progress import DEFAULT_SECONDS, Eta, ExpectedTimes, past_seconds
from benchmark.version import ENGINE_VERSION


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """A tiny suite (2 methods, 2 seeds) run once: its folder, its suite file and the command's output."""
    folder = tmp_path_factory.mktemp("cli")
    suite = write_suite(folder, ["early_fusion", "late_fusion"], seeds=[0, 1])
    dry = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--dry-run")
    assert dry.returncode == 0 and not (folder / "res").exists(), dry.stdout + dry.stderr  # nothing written
    done = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--skip-check")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, suite, (dry, done)


def test_version_names_the_package_and_the_engine() -> None:
    done = run_cli("--version")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert done.returncode == 0 and done.stdout.strip() == f"robust-mm-bench {version}, engine {ENGINE_VERSION}"


def test_dry_run_prints_the_plan_and_trains_nothing(swept) -> None:
    folder, suite, (dry, _) = swept
    assert "dry run: nothing is trained" in dry.stdout
    rows = [line.split() for line in dry.stdout.splitlines() if line.startswith(("early_fusion", "late_fusion"))]
    assert [(r[0], r[2], r[3], r[5]) for r in rows] == [("early_fusion", "2", "0", "2"), ("late_fusion", "2", "0", "2")]
    assert "to do: 4 run(s)" in dry.stdout
    after = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--dry-run", "--skip-check")
    rows = [line.split() for line in after.stdout.splitlines() if line.startswith(("early_fusion", "late_fusion"))]
    assert [(r[3], r[5]) for r in rows] == [("2", "0"), ("2", "0")]  # recorded, to do
    assert "to do: 0 run(s)" in after.stdout and "skipped: 4 already recorded" in after.stdout
    # the expected time of a recorded pair is its records' median wall time
    walls = {}
    for path in (folder / "res" / "runs").glob("*.json"):
        body = json.loads(path.read_text())
        walls.setdefault(body["spec"]["method"], []).append(body["wall_seconds"])
    for r in rows:
        assert r[6] == f"{sorted(walls[r[0]])[0] / 2 + sorted(walls[r[0]])[1] / 2:.1f}"


def test_progress_lines_log_file_and_last_line(swept) -> None:
    folder, _, (_, done) = swept
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in lines] == ["[1/4", "[2/4", "[3/4", "[4/4"], done.stderr
    assert "\r" not in done.stderr and lines[-1].endswith("; done")  # no bar frames when not a terminal
    logs = list((folder / "res" / "logs").glob("run-*.log"))
    assert len(logs) == 1
    log = logs[0].read_text()
    assert "command: python -m benchmark run --suite" in log and all(ln in log for ln in lines)
    assert "done 4, skipped 0" in log  # the summary, printed on stdout, is in the log too
    # The last line: the best row per dataset, computed here from the records independently.
    scores: dict[str, list[float]] = {}
    for path in (folder / "res" / "runs").glob("*.json"):
        body = json.loads(path.read_text())
        scores.setdefault(body["spec"]["method"], []).append(body["metrics"]["clean"][body["primary_metric"]])
    best = max(scores, key=lambda m: sum(scores[m]) / len(scores[m]))
    mean = 100 * sum(scores[best]) / len(scores[best])
    last = done.stdout.strip().splitlines()[-1]
    assert last == (f"best per dataset (clean test score, primary metric): synthetic_pid[n=300] {best} {mean:.1f}%; "
                    f"page: {folder / 'res' / 'leaderboard.html'}")


def test_quiet_and_verbose(swept) -> None:
    folder, suite, _ = swept
    quiet = run_cli("-q", "run", "--suite", str(suite), "--results", str(folder / "res"), "--skip-check")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "done 0, skipped 4" in quiet.stdout
    loud = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--skip-check", "-v",
                   "--methods", "early_fusion", "--seeds", "2", "--no-leaderboard")
    assert loud.returncode == 0 and "[1/1] early_fusion/synthetic_pid/standard/s2: ok" in loud.stderr
    assert len(list((folder / "res" / "logs").glob("run-*.log"))) == 3  # one per sweep


@pytest.mark.parametrize(("args", "flag"), [
    (["run", "--suite", "smoke", "--seeds", "a"], "--seeds"),
    (["run", "--suite", "smoke", "--seeds", "0,0"], "--seeds"),
    (["run", "--suite", "smoke", "--workers", "0"], "--workers"),
    (["run", "--suite", "smoke", "--workers", "two"], "--workers"),
    (["run", "--suite", "smoke", "--threads", "0"], "--threads"),
    (["run", "--suite", "smoke", "--device", "meta"], "--device"),
    (["run", "--suite", "smoke", "--backend", "mpi"], "--backend"),
    (["run", "--suite", "../../x"], "--suite"),
    (["verify", "--sample", "0"], "--sample"),
    (["check-method", "methods/early_fusion.py", "--seconds", "soon"], "--seconds"),
])
def test_a_bad_flag_is_named(args: list[str], flag: str) -> None:
    done = run_cli(*args, *(["--dry-run"] if args[0] == "run" else []))
    assert done.returncode == 2, done.stdout + done.stderr
    assert flag in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_help_texts_cite_only_files_that_exist() -> None:
    from benchmark.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()] + [p.format_help() for p in parser._subparsers._group_actions[0].choices.values()]
    for name in re.findall(r"\b([A-Za-z_]+\.md)\b", "\n".join(texts)):
        assert (REPO / name).exists() or name in ("leaderboard.md", "claims.md", "statistics.md"), name


def test_expected_times_fall_back_in_order() -> None:
    times = ExpectedTimes({("robult", "mfeat"): [10.0, 30.0, 20.0], ("early_fusion", "mfeat"): [2.0],
                           ("early_fusion", "leaf"): [1.0]})
    assert times("robult", "mfeat") == 20.0  # the pair's median
    assert times("robult", "leaf") == pytest.approx(20.0 * 1.0 / 2.0)  # row x dataset / overall median
    assert times("robult", "cells") == 20.0 and times("new", "leaf") == 1.0  # one side known
    assert times("new", "cells") == 2.0  # the overall median
    assert ExpectedTimes({})("a", "b") == DEFAULT_SECONDS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.1, 100.0), min_size=2, max_size=30), st.floats(0.2, 5.0), st.integers(1, 29))
def test_eta_is_exact_when_runs_take_their_expected_share(expected: list[float], pace: float, k: int) -> None:
    """A serial sweep whose runs each take ``pace`` x their expected time: after any k of them, the ETA is
    the time the others will take. A count-based ETA (every run alike) fails this as soon as times differ."""
    k = min(k, len(expected) - 1)
    eta = Eta(expected)
    eta.started = 0.0
    for e in expected[:k]:
        eta.done(e)
    now = pace * sum(expected[:k])
    assert eta.seconds(now) == pytest.approx(pace * sum(expected[k:]), rel=1e-9)


def test_past_seconds_reads_what_json_reads() -> None:
    """The tail-only reader of past run times agrees with a full JSON parse on the committed records."""
    folder = REPO / "results" / "quick"
    found = past_seconds([folder])
    full: dict[tuple[str, str], list[float]] = {}
    for path in sorted((folder / "runs").glob("*.json")):
        body = json.loads(path.read_text())
        full.setdefault((body["spec"].get("label") or body["spec"]["method"], body["spec"]["dataset"]),
                        []).append(body["wall_seconds"])
    assert full and found == full
