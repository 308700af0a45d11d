"""The comparison is fair by construction: under label scarcity no selection step reads a label the
training condition removed (on train or validation), the split is part of the seed, and every method
sees the same split and the same inputs for the same (dataset, seed, condition)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import run_cli, write_suite

from benchmark import registry
from benchmark.records import load_record
from benchmark.suites import load_suite
from benchmark.sweep import DataCache, plan, run_task

METHODS = ["early_fusion", "late_fusion", "gmm_adaptive", "robult", "mm_dro", "ef_dro", "conformal_shapley"]


@pytest.mark.parametrize("method", METHODS)
def test_under_label_scarcity_a_method_is_given_no_label_the_condition_removed(tmp_path: Path, method: str,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``fit`` is handed under labels[0.1]: on train and on validation, about 10% of the labels per
    class, and y = -1 (the label gone, not flagged) wherever ``labeled`` is False."""
    suite_file = write_suite(tmp_path, [method])
    suite_file.write_text(suite_file.read_text().replace(
        "seeds = [0]", 'seeds = [0]\ntraining_conditions = ["labels[0.1]"]'))
    cache = DataCache()
    (run,) = plan(load_suite(str(suite_file)), tmp_path / "res", cache)
    seen = {}
    cls = registry.get("method", method).cls
    original = cls.fit

    def spy(self, train, val, ctx):
        seen["train"], seen["val"] = train, val
        return original(self, train, val, ctx)

    monkeypatch.setattr(cls, "fit", spy)
    body = run_task(run.payload(), [], "cpu", 1, cache)
    assert body["status"] == "ok", body.get("error")
    full = cache.get("synthetic_pid", {"n": 300}).splits_for(0)
    for part in ("train", "val"):
        split = seen[part]
        assert torch.equal(split.y < 0, ~split.labeled), part
        for c in range(int(full[part].y.max()) + 1):
            members = full[part].y == c
            kept = int((split.labeled & members).sum())
            assert 1 <= kept <= max(1, round(0.1 * int(members.sum()))), (part, c, kept)
    assert body["n_train_labeled"] == int(seen["train"].labeled.sum())
    assert body["n_val_labeled"] == int(seen["val"].labeled.sum())


def test_the_runners_validation_scores_read_only_the_labels_kept() -> None:
    """Model selection reads ``val_metrics``: junk behind ``labeled = False`` must not move them."""
    from benchmark.execution import _validation_metrics
    from benchmark.protocols import expand_conditions

    data = registry.get("dataset", "synthetic_pid").cls(n=300).load()
    (scarce,) = expand_conditions(["labels[0.1]"], data.info, "train")
    val = scarce.apply_validation(data.splits_for(0)["val"], 0)
    junk = dataclasses.replace(val, y=torch.where(val.labeled, val.y, (val.y.abs() + 1) % data.info.n_classes))

    class Fixed:
        def predict_proba(self, x, mask):
            g = torch.Generator().manual_seed(0)
            return torch.softmax(torch.randn(mask.shape[0], data.info.n_classes, generator=g), dim=1)

    honest = _validation_metrics(Fixed(), val, scarce, 0, data.info.n_classes)
    poisoned = _validation_metrics(Fixed(), junk, scarce, 0, data.info.n_classes)
    assert honest == poisoned


def test_two_seeds_draw_two_splits_and_two_methods_on_one_seed_see_the_same_split_and_inputs(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"], seeds=[0, 1])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress")
    assert done.returncode == 0, done.stderr
    records = [load_record(p) for p in sorted((tmp_path / "res" / "runs").glob("*.json"))]
    by = {(r.spec.method, r.spec.seed): r.body for r in records}
    for seed in (0, 1):  # the same inputs, condition by condition, for both methods
        assert by[("early_fusion", seed)]["input_sha256"] == by[("late_fusion", seed)]["input_sha256"]
    # Another seed: another test split, so other inputs (this dataset has no official test set).
    assert by[("early_fusion", 0)]["input_sha256"]["clean"] != by[("early_fusion", 1)]["input_sha256"]["clean"]
    data = registry.get("dataset", "synthetic_pid").cls(n=300).load()
    a, b = data.splits_for(0), data.splits_for(1)
    assert set(a["test"].ids) != set(b["test"].ids) and set(a["train"].ids) != set(b["train"].ids)
    assert (a["test"].ids == data.splits_for(0)["test"].ids).all()
