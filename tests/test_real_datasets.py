"""The packaged real datasets: loaders, official splits, encodings, and clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmark import registry
from benchmark.data import IMBALANCE_THRESHOLD, MissingSourceError, expected_primary_metric

EXPECTED = {  # name: (n, classes, {modality: width})
    "cells": (2019, 2, {"ch1": 28, "ch2": 2, "ch3": 13, "ch4": 13}),
    "segment": (2310, 7, {"geometry": 8, "colour": 10}),
    "leaf": (1907, 32, {"descriptors": 30, "outline": 20, "shape": 19, "texture": 4, "colour": 7}),
    "caravan": (5822, 2, {"sociodemographic": 43, "policies": 42}),
    "mfeat": (2000, 10, {"fourier": 76, "profile": 216, "karhunen_loeve": 64, "pixels": 240, "zernike": 47,
                         "morphological": 6}),
}
APT = shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


def check_dataset(name: str, n: int, classes: int, widths: dict[str, int]) -> None:
    data = registry.get("dataset", name).cls().load()
    splits = data.splits_for(0)
    assert sum(len(s) for s in splits.values()) == n and data.info.n_classes == classes
    assert {m.name: m.size for m in data.info.modalities} == widths
    all_y = np.concatenate([s.y.numpy() for s in splits.values()])
    assert set(np.unique(all_y)) == set(range(classes))
    ids = np.concatenate([s.ids for s in splits.values()])
    assert len(set(ids.tolist())) == n
    for s in splits.values():
        assert all(np.isfinite(v.numpy()).all() for v in s.x.values())
    card = registry.get("dataset", name).cls.card
    assert card.licence and card.citation and set(card.modalities) == set(widths) and card.package and card.version
    assert card.primary_metric == expected_primary_metric(data.arrays["y"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_packaged_dataset_loads_with_its_card(name: str) -> None:
    check_dataset(name, *EXPECTED[name])


@pytest.mark.skipif(not APT, reason="satellite is prepared where apt-get and dpkg-deb exist (Debian, Ubuntu)")
def test_satellite_comes_from_the_debian_package_without_r() -> None:
    check_dataset("satellite", 6435, 6, {"visible": 18, "near_infrared": 18})


def test_satellite_without_apt_says_exactly_what_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    sat = registry.get("dataset", "satellite").cls
    module = __import__(sat.__module__, fromlist=["shutil"])
    monkeypatch.setattr(module.shutil, "which", lambda _: None)
    monkeypatch.setattr(module, "source_dir", lambda: __import__("pathlib").Path("/nonexistent/sat"))
    with pytest.raises(MissingSourceError, match=r"apt-get download r-cran-mlbench=2\.1-3-1 && dpkg-deb -x"):
        module.fetch_rda()


def test_cells_keeps_the_official_test_split() -> None:
    data = registry.get("dataset", "cells").cls().load()
    for seed in (0, 1):
        splits = data.splits_for(seed)
        assert len(splits["test"]) == 1010  # the source's case == "Test"
        assert len(splits["train"]) + len(splits["val"]) == 1009


def test_every_card_ranks_on_the_metric_its_class_balance_calls_for() -> None:
    """Balanced accuracy where the majority class exceeds 80% (caravan), accuracy elsewhere."""
    checked = []
    for name, plugin in sorted(registry.datasets().items()):
        try:
            y = plugin.cls().load().arrays["y"]
        except MissingSourceError:
            continue
        majority = np.bincount(y).max() / len(y)
        assert plugin.cls.card.primary_metric == ("balanced_accuracy" if majority > IMBALANCE_THRESHOLD
                                                  else "accuracy"), (name, majority)
        checked.append(name)
    assert registry.get("dataset", "caravan").cls.card.primary_metric == "balanced_accuracy"
    assert {"caravan", "mfeat", "synthetic_pid"} <= set(checked)


def test_a_card_must_name_a_known_primary_metric() -> None:
    from benchmark.data import DatasetCard

    with pytest.raises(TypeError):
        DatasetCard(source="s", licence="l", citation="c", modalities={})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="primary_metric"):
        DatasetCard(source="s", licence="l", citation="c", modalities={}, primary_metric="auroc")  # type: ignore[arg-type]


def test_leaf_descriptors_are_one_hot_per_descriptor() -> None:
    raw = registry.get("dataset", "leaf").cls().build()
    onehot = raw.x["descriptors"]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    # 8 descriptors, each exactly one level per leaf.
    assert np.all(onehot.sum(axis=1) == 8)


def test_a_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "river" else real(name, *a))
    with pytest.raises(MissingSourceError, match=r"pip install --no-deps river==0\.26\.1"):
        registry.get("dataset", "segment").cls().build()
