"""Hyperparameter draws are seeded by name; non-oracle selection never reads a test metric."""

from __future__ import annotations

import copy
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


def test_every_method_draw_builds_valid_hyperparameters() -> None:
    for name, plugin in registry.methods().items():
        for k in range(4):
            values = draw(plugin.cls.Hparams, name, k)
            plugin.cls.Hparams(**values)  # raises on a value the dataclass refuses


def fake(method: str, draw_index: int, seed: int, val_clean: float, val_cond: float, test: float) -> dict:
    return {"spec": {"method": method, "dataset": "d", "train_condition": "standard", "seed": seed,
                     "draw": draw_index}, "status": "ok",
            "val_metrics": {"clean": {"accuracy": val_clean}, "train_condition": {"accuracy": val_cond}},
            "metrics": {"clean": {"accuracy": test, "family": "clean"},
                        "random_missing[0.5]": {"accuracy": test - 0.1, "family": "missing"}}}


def test_non_oracle_rules_never_read_a_test_metric() -> None:
    recs = [fake("m", d, s, val_clean=0.5 + 0.1 * (d == 2), val_cond=0.5 + 0.1 * (d == 1), test=0.7)
            for d in range(4) for s in range(3)]
    poisoned = copy.deepcopy(recs)
    for r in poisoned:  # make draw 3 look perfect on test data, and the others terrible
        for m in r["metrics"].values():
            m["accuracy"] = 1.0 if r["spec"]["draw"] == 3 else 0.0
    for rule, spec in RULES.items():
        if spec.reads_test:
            continue
        _, clean_choice = select(recs, rule)
        _, poisoned_choice = select(poisoned, rule)
        assert clean_choice == poisoned_choice, rule
    assert select(recs, "clean_val")[1][("m", "d", "standard")] == 2
    assert select(recs, "train_condition_val")[1][("m", "d", "standard")] == 1
    assert select(poisoned, "oracle_test")[1][("m", "d", "standard")] == 3  # the oracle does read test data


def test_a_suite_with_draws_records_every_draw_and_writes_the_oracle_table_apart(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"])
    suite.write_text(suite.read_text().replace('seeds = [0]', 'seeds = [0]\nhparam_draws = 3'))
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 0, done.stderr
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
