"""Every registered method keeps the contract: valid probabilities, blind to values behind the mask,
deterministic given the seed."""

from __future__ import annotations

import pytest
import torch
from helpers import toy_info, toy_split

from benchmark import registry
from benchmark.contracts import TrainBudget, TrainContext
from benchmark.seeding import set_determinism

METHODS = sorted(registry.methods())
BUDGET = TrainBudget(max_epochs=3, patience=2, batch_size=32, width=16)


def fitted(name: str, seed: int = 0):
    set_determinism(1)
    torch.manual_seed(seed)
    method = registry.get("method", name).cls(toy_info())
    ctx = TrainContext.from_seed(seed, BUDGET)
    method.fit(toy_split(90, seed=1), toy_split(30, seed=2, prefix="v"), ctx)
    return method


@pytest.mark.parametrize("name", METHODS)
def test_predictions_are_probabilities(name: str) -> None:
    test = toy_split(25, seed=3, prefix="t")
    p = fitted(name).predict_proba(test.x, test.mask)
    assert p.shape == (25, 3) and bool((p >= 0).all())
    assert torch.allclose(p.sum(dim=1), torch.ones(25, dtype=p.dtype), atol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_output_ignores_whatever_values_the_mask_hides(name: str) -> None:
    method = fitted(name)
    test = toy_split(25, seed=3, prefix="t")
    mask = test.mask.clone()
    mask[::2, 0] = False
    mask[1::3, 2] = False
    garbage = {k: v.clone() for k, v in test.x.items()}
    for j, k in enumerate(garbage):
        hidden = ~mask[:, j]
        garbage[k][hidden] = torch.randn_like(garbage[k][hidden]) * 1e3
    zeros = test.with_inputs(test.x, mask).x
    assert torch.equal(method.predict_proba(garbage, mask), method.predict_proba(zeros, mask))


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_predictions_and_other_seed_differs(name: str) -> None:
    test = toy_split(25, seed=3, prefix="t")
    a = fitted(name, seed=0).predict_proba(test.x, test.mask)
    b = fitted(name, seed=0).predict_proba(test.x, test.mask)
    c = fitted(name, seed=1).predict_proba(test.x, test.mask)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_late_fusion_with_one_modality_present_is_that_modalitys_head() -> None:
    method = fitted("late_fusion")
    test = toy_split(10, seed=3, prefix="t")
    mask = torch.zeros_like(test.mask)
    mask[:, 1] = True
    head = torch.softmax(method.net["b"](test.x["b"]), dim=1)
    assert torch.allclose(method.predict_proba(test.x, mask), head, atol=1e-6)
