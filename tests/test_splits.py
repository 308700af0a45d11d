"""The split is part of the seed: each seed draws its own stratified partition (an official test set stays
fixed), standardised with its own training part; label scarcity thins validation labels as it does training's."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from helpers import toy_split

from benchmark import registry
from benchmark.contracts import Modality, Split
from benchmark.data import Dataset, DatasetCard, Prepared, RawData
from benchmark.protocols import PROTOCOLS

PID = {"n": 600}
TESTS = Path(__file__).resolve().parent


def pid(**params: object) -> Prepared:
    return registry.get("dataset", "synthetic_pid").cls(**{**PID, **params}).load()


def digest(splits: dict[str, Split]) -> str:
    """sha256 over every byte of every split (inputs, mask, labels, ids)."""
    h = hashlib.sha256()
    for part in ("train", "val", "test"):
        s = splits[part]
        for name in sorted(s.x):
            h.update(s.x[name].numpy().tobytes())
        for t in (s.mask, s.y, s.labeled):
            h.update(t.numpy().tobytes())
        h.update("|".join(s.ids.tolist()).encode())
    return h.hexdigest()


def ids(splits: dict[str, Split]) -> dict[str, set[str]]:
    return {part: set(s.ids.tolist()) for part, s in splits.items()}


class ToySource(Dataset):
    """An in-test dataset: 4 classes of 50, two tabular modalities with an offset, an optional official test."""

    name = "toy_source"
    modalities = (Modality("a", "tabular", (3,)), Modality("b", "tabular", (2,)))
    n_classes = 4
    card = DatasetCard(source="tests", licence="-", citation="-", modalities={"a": "-", "b": "-"},
                       primary_metric="accuracy")
    give_split: ClassVar[bool] = False

    def build(self) -> RawData:
        rng = np.random.default_rng(0)
        n = 200
        y = np.arange(n) % 4
        x = {"a": rng.normal(5.0, 3.0, (n, 3)), "b": rng.normal(-2.0, 0.5, (n, 2))}
        split = np.where(np.arange(n) < 80, "test", "train") if self.give_split else None
        return RawData(x=x, y=y, ids=np.array([f"toy-{i:03d}" for i in range(n)]), split=split)


class OfficialToy(ToySource):
    name = "official_toy"
    official_test = True
    give_split = True


@pytest.mark.parametrize("name,params", [("synthetic_pid", PID), ("mfeat", {})])
def test_two_seeds_draw_different_stratified_disjoint_partitions(name: str, params: dict) -> None:
    data = registry.get("dataset", name).cls(**params).load()
    a, b = data.splits_for(0), data.splits_for(1)
    for splits in (a, b):
        parts = ids(splits)
        assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
        assert not (parts["val"] & parts["test"])
        assert sum(len(p) for p in parts.values()) == len(data.arrays["y"])
        share = {p: np.bincount(s.y.numpy(), minlength=data.info.n_classes) / len(s) for p, s in splits.items()}
        assert np.abs(share["train"] - share["test"]).max() < 0.03
        assert np.abs(share["train"] - share["val"]).max() < 0.03
        assert abs(len(splits["test"]) / len(data.arrays["y"]) - 0.2) < 0.01
    for part in ("train", "val", "test"):
        assert ids(a)[part] != ids(b)[part]


def test_the_same_seed_gives_byte_identical_splits_in_two_calls_after_a_reload_and_in_another_process() -> None:
    first = digest(pid().splits_for(3))
    again = pid()
    assert digest(again.splits_for(3)) == first and again.splits_for(3) is again.splits_for(3)  # cached
    assert digest(again.splits_for(4)) != first
    code = ("from benchmark import registry; from test_splits import digest; "
            f"print(digest(registry.get('dataset', 'synthetic_pid').cls(**{PID!r}).load().splits_for(3)))")
    env = {**os.environ, "PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}
    out = subprocess.run([sys.executable, "-c", code], cwd=TESTS.parent, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip() == first


def test_the_partition_is_keyed_on_the_dataset_parameters() -> None:
    a, b = pid().partition(0), pid(correlation=0.5).partition(0)
    assert (a != b).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standardisation_follows_each_seeds_training_part(seed: int) -> None:
    data = pid()
    train = data.splits_for(seed)["train"]
    for m in data.info.modalities:
        v = train.x[m.name].double()
        assert float(v.mean(0).abs().max()) < 1e-5
        assert float((v.std(0, unbiased=False) - 1).abs().max()) < 1e-4


def test_toy_standardisation_uses_the_seeds_training_part_only() -> None:
    data = ToySource().load()
    for seed in (0, 5):
        part = data.partition(seed)
        raw = data.arrays["x/a"][part == "train"].astype(np.float64)
        train = data.splits_for(seed)["train"].x["a"].numpy()
        np.testing.assert_allclose(train, (raw - raw.mean(0)) / raw.std(0), atol=1e-5)


def test_an_official_test_set_stays_fixed_while_train_and_validation_are_redrawn() -> None:
    data = OfficialToy().load()
    a, b = data.splits_for(0), data.splits_for(1)
    official = {f"toy-{i:03d}" for i in range(80)}
    assert ids(a)["test"] == ids(b)["test"] == official
    assert ids(a)["val"] != ids(b)["val"]
    for splits in (a, b):
        assert ids(splits)["train"] | ids(splits)["val"] == {f"toy-{i:03d}" for i in range(80, 200)}
        # validation: the official share (25%) of the official training part, per class (30 each).
        assert np.bincount(splits["val"].y.numpy()).tolist() == [8, 8, 8, 8]


def test_a_loader_must_say_whether_its_split_is_official() -> None:
    class Undeclared(ToySource):
        name = "undeclared_toy"
        give_split = True

    with pytest.raises(ValueError, match="official_test"):
        Undeclared().load()


def test_cells_keeps_its_official_test_set_for_every_seed() -> None:
    data = registry.get("dataset", "cells").cls().load()
    a, b = data.splits_for(0), data.splits_for(7)
    assert ids(a)["test"] == ids(b)["test"] and len(a["test"]) == 1010
    assert torch.equal(a["test"].y, b["test"].y)
    assert ids(a)["val"] != ids(b)["val"]


def test_every_method_gets_the_same_splits_for_a_seed() -> None:
    data = pid()
    assert data.splits_for(2) is data.splits_for(np.int64(2))
    with pytest.raises(TypeError):
        data.splits_for(True)


# --- labels[f] on validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.1, 0.05])
def test_label_scarcity_keeps_the_same_share_of_validation_labels_per_class(fraction: float) -> None:
    proto = PROTOCOLS["labels"]
    val = pid().splits_for(0)["val"]
    out = proto.apply_validation(val, (fraction,), 0)
    assert len(out) == len(val) and out.ids.tolist() == val.ids.tolist()
    assert torch.all(out.y[~out.labeled] == -1) and torch.all(out.y[out.labeled] >= 0)
    assert torch.equal(out.y[out.labeled], val.y[out.labeled])
    per_class = np.bincount(val.y.numpy())
    kept = np.bincount(out.y[out.labeled].numpy(), minlength=len(per_class))
    assert kept.tolist() == [max(1, round(fraction * c)) for c in per_class]
    assert (kept >= 1).all()
    assert torch.equal(out.x["m0"], val.x["m0"]) and torch.equal(out.mask, val.mask)


def test_validation_labels_are_drawn_apart_from_training_and_keyed_on_the_seed() -> None:
    proto = PROTOCOLS["labels"]
    s = toy_split(600)
    train, val = proto.apply(s, (0.1,), 0), proto.apply_validation(s, (0.1,), 0)
    assert not torch.equal(train.labeled, val.labeled)
    assert torch.equal(val.labeled, proto.apply_validation(s, (0.1,), 0).labeled)
    assert not torch.equal(val.labeled, proto.apply_validation(s, (0.1,), 1).labeled)


def test_a_small_class_keeps_at_least_one_validation_label() -> None:
    s = toy_split(40)
    keep = torch.ones(40, dtype=torch.bool)
    keep[(s.y == 2).nonzero().flatten()[1:]] = False  # class 2 has one sample
    out = PROTOCOLS["labels"].apply_validation(s.subset(keep.nonzero().flatten()), (0.05,), 0)
    assert sorted(set(out.y[out.labeled].tolist())) == [0, 1, 2]


@pytest.mark.parametrize("key,args", [("standard", ()), ("train_missing", (0.3, 1.0)),
                                      ("train_imbalance", ("a", 3.0))])
def test_other_training_conditions_leave_validation_clean_and_labelled(key: str, args: tuple) -> None:
    s = toy_split(50)
    assert PROTOCOLS[key].apply_validation(s, args, 0) is s


def test_every_training_protocol_says_what_it_does_to_validation() -> None:
    assert all(hasattr(p, "apply_validation") for p in PROTOCOLS.values() if p.stage == "train")
