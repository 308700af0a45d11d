"""Properties of the protocols: pure, keyed on the sample id, and doing what their name says."""

from __future__ import annotations

import numpy as np
import torch
from helpers import toy_split
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.protocols import Condition, apply_condition


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_random_missing_keeps_one_modality_and_is_a_pure_function_of_the_key(rate: float, seed: int) -> None:
    s = toy_split(60)
    a = apply_condition(s, Condition("random_missing", (rate,)), seed)
    b = apply_condition(s, Condition("random_missing", (rate,)), seed)
    assert torch.equal(a.mask, b.mask)
    assert bool((a.mask.sum(dim=1) >= 1).all())
    for j, name in enumerate(s.modality_names):
        hidden = ~a.mask[:, j]
        assert bool((a.x[name][hidden] == 0).all())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), rate=st.sampled_from([0.1, 0.3, 0.5]))
def test_random_missing_depends_on_each_sample_alone(seed: int, rate: float) -> None:
    """Permuting or sub-setting the split permutes the masks: a sample's draw ignores the others."""
    s = toy_split(50)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(50))
    full = apply_condition(s, Condition("random_missing", (rate,)), seed).mask
    permuted = apply_condition(s.subset(perm), Condition("random_missing", (rate,)), seed).mask
    assert torch.equal(permuted, full[perm])
    head = apply_condition(s.subset(torch.arange(10)), Condition("random_missing", (rate,)), seed).mask
    assert torch.equal(head, full[:10])


def test_random_missing_rate_is_about_right_and_seeds_differ() -> None:
    s = toy_split(3000)
    a = apply_condition(s, Condition("random_missing", (0.3,)), 0).mask
    b = apply_condition(s, Condition("random_missing", (0.3,)), 1).mask
    # Independent drops at 0.3, with all-missing rows restored to one: expected missing share
    # = 0.3 - P(all three dropped) * 1/3 = 0.3 - 0.027/3 = 0.291.
    assert abs((~a).float().mean().item() - 0.291) < 0.02
    assert not torch.equal(a, b)


def test_missing_modality_removes_exactly_that_modality() -> None:
    s = toy_split(20)
    out = apply_condition(s, Condition("missing_modality", ("b",)), 0)
    assert not out.mask[:, 1].any() and out.mask[:, [0, 2]].all()
    assert bool((out.x["b"] == 0).all()) and torch.equal(out.x["a"], s.x["a"])


def test_label_scarcity_removes_labels_stratified() -> None:
    s = toy_split(300)
    out = apply_condition(s, Condition("labels", (0.1,)), 0, stage="train")
    assert int(out.labeled.sum()) == 30
    assert torch.all(out.y[~out.labeled] == -1)
    assert torch.equal(out.y[out.labeled], s.y[out.labeled])
    assert torch.bincount(out.y[out.labeled]).tolist() == [10, 10, 10]


def test_condition_keys_round_trip() -> None:
    for key in ("clean", "random_missing[0.3]", "missing_modality[pixels]"):
        assert Condition.parse(key).key == key
