"""Known answers: outcomes synthetic_pid's construction fixes, checked end to end (generator, protocols,
runner, methods, claims). A change to any of them that breaks one fails here; the committed board checks
the same claims at full size on ``results/claims.md``."""

from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import run_cli

from benchmark.suite_files import suite_file


def _small_known_answers(folder: Path) -> Path:
    """known_answers.toml at test size: fewer samples and epochs, five seeds (a check whose every seed
    lands at the same value, e.g. 100% accuracy, is decided by the exact sign test: 0.5^5 = 0.031)."""
    raw = tomllib.loads(suite_file("known_answers").read_text())
    datasets = ", ".join("{" + ", ".join([f'name = "{e["name"]}"', "n = 3000"]
                                         + [f"{k} = {v!r}".replace("'", '"') for k, v in e.items() if k != "name"])
                         + "}" for e in raw["datasets"])
    text = f'''name = "known_small"
description = "known_answers at test size"
methods = {raw["methods"]!r}
datasets = [{datasets}]
seeds = [0, 1, 2, 3, 4]
training_conditions = {raw["training_conditions"]!r}
test_conditions = {raw["test_conditions"]!r}

[budget]
max_epochs = 30
patience = 6
batch_size = 128
width = 64
'''.replace("'", '"')
    path = folder / "known_small.toml"
    path.write_text(text)
    return path


def test_known_answers_hold_at_test_size(tmp_path: Path) -> None:
    from benchmark.claim_catalogue import CLAIMS
    from benchmark.claims import scorecard
    from benchmark.results import load, suite_scope

    suite = _small_known_answers(tmp_path)
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   extra_env={"BENCHMARK_DATA": str(tmp_path / "data")}, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    results = load(tmp_path / "res", suite_scope(str(suite), tmp_path / "res"))
    known = [c for c in CLAIMS if c.kind == "known answer"]
    assert known
    for r in scorecard(known, lambda name: results):
        assert r.verdict.verdict == "supported", (r.claim.key, r.verdict)
