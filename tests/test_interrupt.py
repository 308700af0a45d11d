"""Interruptions end cleanly (issue 22, point 8): Ctrl-C during a sweep, on either backend, prints how many
runs finished and the command that resumes, with no traceback, and the resumed sweep does exactly the
runs left; a ``prepare`` killed at any point is followed by a ``prepare --force`` that succeeds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_cli

SMOKE_RUNS = 7  # the smoke suite: every built-in method, one dataset, one seed


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """The command in its own session, as a terminal runs a foreground job: Ctrl-C goes to its whole
    process group (the sweep's process, and whatever helpers stayed in its group)."""
    return subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize("backend", ["serial", "dask"])
def test_ctrl_c_says_what_finished_and_how_to_resume(tmp_path: Path, backend: str) -> None:
    res = tmp_path / "res"
    args = ["run", "--suite", "smoke", "--results", str(res), "--backend", backend, "--skip-check", "--no-leaderboard"]
    proc = _start(args, {})
    seen = []
    for line in proc.stderr:  # progress lines: stderr is not a terminal
        seen.append(line)
        if line.startswith("[1/"):
            break
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, err
    said = re.search(r"interrupted: (\d+) run\(s\) of this sweep finished .* (\d+) still to do\. Resume with: (.+)$",
                     err, re.M)
    assert said, err
    finished, left = int(said.group(1)), int(said.group(2))
    records = list((res / "runs").glob("*.json"))
    assert finished == len(records) >= 1 and finished + left == SMOKE_RUNS
    assert said.group(3).strip() == "python -m benchmark " + " ".join(args)
    again = run_cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"done {left}, skipped {finished}" in again.stdout


def _prepare(store: Path, *flags: str) -> subprocess.CompletedProcess:
    return run_cli("prepare", "--datasets", "synthetic_pid", *flags, extra_env={"BENCHMARK_DATA": str(store)})


def test_prepare_killed_anywhere_then_force_succeeds(tmp_path: Path) -> None:
    """SIGKILL at points spread over a whole prepare (imports and the store's creation, the build, the
    datalad save), and Ctrl-C once: each time ``prepare --force`` afterwards succeeds and loads."""
    t0 = time.monotonic()
    assert _prepare(tmp_path / "timing").returncode == 0
    whole = time.monotonic() - t0
    for i, share in enumerate((0.4, 0.75, 0.95)):
        store = tmp_path / f"store{i}"
        proc = _start(["prepare", "--datasets", "synthetic_pid"], {"BENCHMARK_DATA": str(store)})
        time.sleep(share * whole)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        again = _prepare(store, "--force")
        assert again.returncode == 0 and "synthetic_pid" in again.stdout, (share, again.stderr[-2000:])
    store = tmp_path / "ctrl_c"
    proc = _start(["prepare", "--datasets", "synthetic_pid"], {"BENCHMARK_DATA": str(store)})
    time.sleep(0.8 * whole)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 130:  # it had not finished: it says how to rebuild, without a traceback
        assert "prepare --datasets synthetic_pid --force" in err and "Traceback" not in err, err
    assert _prepare(store, "--force").returncode == 0


def test_prepare_after_a_commit_killed_midway(tmp_path: Path) -> None:
    """git killed mid-commit leaves ``.git/index.lock``; every later git command in the store failed on it,
    so the fix the integrity error recommends (``prepare --force``) failed too."""
    store = tmp_path / "store"
    assert _prepare(store).returncode == 0
    for lock in (".git/index.lock", ".git/annex/index.lock"):
        (store / lock).parent.mkdir(parents=True, exist_ok=True)
        (store / lock).write_text("")
    (store / "prepared" / "synthetic_pid-0.123.tmp.npz").write_bytes(b"half")
    again = _prepare(store, "--force")
    assert again.returncode == 0, again.stderr[-2000:]
    assert not (store / ".git" / "index.lock").exists() and not list((store / "prepared").glob("*.tmp.npz"))
    status = subprocess.run(["git", "-C", str(store), "status", "--porcelain"], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout == "", status.stdout + status.stderr  # saved, nothing pending


def test_a_ctrl_c_python_swallows_is_remembered_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C landing in a fork's callbacks (or any ``__del__``) reaches ``sys.unraisablehook``, which
    prints "Exception ignored" and a traceback and lets the program go on: the sweep remembers it."""
    from benchmark.sweep import remembered_interrupt

    class InterruptedWhileCollected:
        def __del__(self) -> None:
            raise KeyboardInterrupt

    before = sys.unraisablehook
    with remembered_interrupt() as interrupted:
        InterruptedWhileCollected()  # collected at once: its __del__ raises where nothing can catch it
        assert interrupted == [True]
    assert "Traceback" not in capsys.readouterr().err
    assert sys.unraisablehook is before  # outside the sweep, whatever reported them before does again
