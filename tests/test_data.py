"""Datasets: per-seed stratified splits, stable ids and checksums, clear errors for missing sources."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import registry
from benchmark.data import MissingSourceError, find_package_file


@pytest.mark.parametrize("name", ["synthetic_pid", "mfeat"])
def test_a_seeds_splits_are_reproducible_stratified_disjoint_and_checksummed(name: str) -> None:
    cls = registry.get("dataset", name).cls
    first, second = cls().load(), cls().load()
    assert first.checksum == second.checksum
    info, a, b = first.info, first.splits_for(0), second.splits_for(0)
    ids = {part: set(s.ids.tolist()) for part, s in a.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    for part, s in a.items():
        assert list(s.ids) == list(b[part].ids)
        assert s.mask.all()
        for m in info.modalities:
            assert tuple(s.x[m.name].shape[1:]) == m.shape
    share = {part: np.bincount(s.y.numpy()) / len(s) for part, s in a.items()}
    assert np.abs(share["train"] - share["test"]).max() < 0.03
    # Standardised with training statistics.
    first_tab = next(m for m in info.modalities if m.kind == "tabular")
    assert abs(float(a["train"].x[first_tab.name].mean())) < 1e-4


def test_the_stored_reference_partition_is_still_served() -> None:
    data = registry.get("dataset", "synthetic_pid").cls(n=400).load()
    assert [len(data.splits[p]) for p in ("train", "val", "test")] == [int((data.arrays["split"] == p).sum())
                                                                      for p in ("train", "val", "test")]


def test_mfeat_has_six_views_with_the_pixel_view_as_an_image() -> None:
    info = registry.get("dataset", "mfeat").cls().info
    kinds = {m.name: (m.kind, m.shape) for m in info.modalities}
    assert len(kinds) == 6 and kinds["pixels"] == ("image", (1, 15, 16)) and info.n_classes == 10


def test_synthetic_pid_parameters_change_the_data_and_are_validated() -> None:
    cls = registry.get("dataset", "synthetic_pid").cls
    assert cls(n=400).load().checksum != cls(n=400, correlation=0.8).load().checksum
    with pytest.raises(ValueError, match="one scale per modality"):
        cls(n_modalities=2)
    with pytest.raises(ValueError, match="sum to 1"):
        cls(redundant=0.9)


def test_synthetic_pid_imbalance_makes_the_least_noisy_modality_most_informative() -> None:
    from sklearn.linear_model import LogisticRegression

    data = registry.get("dataset", "synthetic_pid").cls(n=3000, unique=0.0, synergy=0.0, redundant=1.0,
                                                        noise=[0.3, 1.0, 3.0]).load()
    tr, te = data.splits_for(0)["train"], data.splits_for(0)["test"]
    scores = [LogisticRegression(max_iter=500).fit(tr.x[m].numpy(), tr.y.numpy()).score(te.x[m].numpy(), te.y.numpy())
              for m in ("m0", "m1", "m2")]
    assert scores[0] > scores[1] > scores[2]


def test_missing_source_error_names_the_install_command() -> None:
    with pytest.raises(MissingSourceError, match="pip install --no-deps some-package==1.0"):
        find_package_file("no_such_package_here", "x.csv", "pip install --no-deps some-package==1.0")
