"""Hyperparameter draws are seeded by name; non-oracle selection never reads a test metric."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_suite

from benchmark import registry
from benchmark.hparams import Choice, IntUniform, LogUniform, Uniform, draw, hparam
from benchmark.selection import RULES, select


@dataclasses.dataclass(frozen=True)
class Before:
    lr_scale: float = hparam(1.0, LogUniform(0.1, 10.0))
    depth: int = hparam(2, IntUniform(1, 4))


@dataclasses.dataclass(frozen=True)
class After:
    lr_scale: float = hparam(1.0, LogUniform(0.1, 10.0))
    temperature: float = hparam(0.5, Uniform(0.1, 1.0))  # a new hyperparameter, added in the middle
    depth: int = hparam(2, IntUniform(1, 4))
    mode: str = hparam("a", Choice(("a", "b")))


def test_adding_a_hyperparameter_leaves_the_other_draws_unchanged() -> None:
    for k in range(1, 20):
        before, after = draw(Before, "m", k), draw(After, "m", k)
        assert {n: after[n] for n in before} == before
    assert draw(After, "m", 0) == {}  # draw 0 is the defaults
    assert draw(After, "m", 1) != draw(After, "m", 2) and draw(After, "m", 1) != draw(After, "other", 1)
    values = [draw(Before, "m", k)["lr_scale"] for k in range(1, 200)]
    assert min(values) >= 0.1 and max(values) <= 10.0 and np.median(values) == pytest.approx(1.0, abs=0.6)


@pytest.fixture(scope="module")
def draws_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two methods, three hyperparameter draws each, written by the runner."""
    tmp_path = tmp_path_factory.mktemp("draws")
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"])
    suite.write_text(suite.read_text().replace('seeds = [0]', 'seeds = [0]\nhparam_draws = 3'))
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   extra_env={"BENCHMARK_DATA": str(tmp_path_factory.getbasetemp() / "data")})
    assert done.returncode == 0, done.stderr
    return tmp_path / "res"


@pytest.fixture()
def draws_results(draws_folder: Path):
    from benchmark.results import load

    return load(draws_folder)


def test_every_method_draw_passes_the_shared_validation_and_a_wrong_value_is_refused() -> None:
    from benchmark.hparams import validate

    for name, plugin in registry.methods().items():
        for k in range(6):
            validate(plugin.cls.Hparams, draw(plugin.cls.Hparams, name, k), name)  # raises on a refused value
    with pytest.raises(ValueError, match="mask_as_input"):
        validate(registry.get("method", "early_fusion").cls.Hparams, {"mask_as_input": "maybe"}, "early_fusion")


def _scored(results, run_score: dict[str, tuple[float, float, float]]):
    """``results`` with each run's validation (clean, training condition) and test scores set: accuracy v,
    and NLL 1 - v, so that every rule agrees on which draw is best."""
    table = results.table.copy()
    for metric, value in (("accuracy", lambda v: v), ("nll", lambda v: 1 - v)):
        rows = table["metric"] == metric
        for rid, (val_clean, val_cond, test) in run_score.items():
            run = rows & (table["run_id"] == rid)
            table.loc[run & (table["split"] == "val") & (table["condition"] == "clean"), "value"] = value(val_clean)
            table.loc[run & (table["split"] == "val") & (table["condition"] == "train_condition"), "value"] = \
                value(val_cond)
            table.loc[run & (table["split"] == "test"), "value"] = value(test)
    return dataclasses.replace(results, table=table)


def test_non_oracle_rules_never_read_a_test_metric(draws_results) -> None:
    runs = [r for r in draws_results.ok if r.method == "early_fusion"]
    assert sorted(r.spec.draw for r in runs) == [0, 1, 2]
    key = ("early_fusion", runs[0].dataset, "standard")
    honest = {r.run_id: (0.5 + 0.1 * (r.spec.draw == 2), 0.5 + 0.1 * (r.spec.draw == 1), 0.7) for r in runs}
    poisoned = {r.run_id: (*honest[r.run_id][:2], 1.0 if r.spec.draw == 0 else 0.0) for r in runs}
    clean, dirty = _scored(draws_results, honest), _scored(draws_results, poisoned)
    for rule, spec in RULES.items():
        if not spec.reads_test:
            assert select(clean, rule)[1][key] == select(dirty, rule)[1][key], rule
    assert select(clean, "clean_val")[1][key] == 2 and select(clean, "clean_val_accuracy")[1][key] == 2
    assert select(clean, "train_condition_val")[1][key] == 1
    assert select(dirty, "oracle_test")[1][key] == 0  # the oracle does read test data
    kept = select(clean, "clean_val")[0]
    assert {r.spec.draw for r in kept.records if r.method == "early_fusion"} == {2}
    assert set(kept.table["run_id"]) == {r.run_id for r in kept.records if r.ok}


def test_a_suite_with_draws_records_every_draw_and_writes_the_oracle_table_apart(draws_folder: Path) -> None:
    tmp_path = draws_folder.parent
    assert len(list((tmp_path / "res" / "runs").glob("*.json"))) == 2 * 3
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "Model selection: `clean_val`" in board and "leaderboard_oracle.md" in board
    oracle = (tmp_path / "res" / "leaderboard_oracle.md").read_text()
    assert oracle.startswith("# NOT A LEADERBOARD") and "oracle_test" in oracle
    csv = (tmp_path / "res" / "leaderboard.csv").read_text().splitlines()
    header = csv[0].split(",")
    assert {"selection_rule", "draw_selected", "draws", "tuning_spread_clean_accuracy"} <= set(header)
    assert all(row.split(",")[header.index("draws")] == "3" for row in csv[1:])


def test_an_oracle_rule_is_refused_for_the_main_leaderboard(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    suite.write_text(suite.read_text().replace('seeds = [0]', 'seeds = [0]\nselection_rule = "oracle_test"'))
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"))
    assert done.returncode == 2 and "not allowed for a leaderboard" in done.stderr
