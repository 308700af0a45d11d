from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import toy_split

from benchmark.contracts import Split, TrainBudget, TrainContext, hparams_from_dict
from benchmark.seeding import torch_generator
from benchmark.timing import Clock


def test_split_rejects_inconsistent_shapes() -> None:
    s = toy_split(10)
    with pytest.raises(ValueError, match="mask must be bool"):
        Split(x=s.x, mask=torch.ones(10, 2, dtype=torch.bool), y=s.y, labeled=s.labeled, ids=s.ids)
    with pytest.raises(ValueError, match="rows"):
        Split(x={**s.x, "a": s.x["a"][:5]}, mask=s.mask, y=s.y, labeled=s.labeled, ids=s.ids)


def test_a_sample_flagged_labeled_must_have_a_label() -> None:
    s = toy_split(10)
    y = s.y.clone()
    y[0] = -1
    with pytest.raises(ValueError, match="no label"):
        Split(x=s.x, mask=s.mask, y=y, labeled=s.labeled, ids=s.ids)


def test_with_inputs_zero_fills_what_the_mask_hides() -> None:
    s = toy_split(8)
    mask = s.mask.clone()
    mask[:4, 2] = False
    out = s.with_inputs(s.x, mask)
    assert torch.all(out.x["img"][:4] == 0) and torch.equal(out.x["img"][4:], s.x["img"][4:])
    assert torch.equal(out.x["a"], s.x["a"])


def test_without_labels_removes_every_label() -> None:
    view = toy_split(8).without_labels()
    assert torch.all(view.y == -1) and not view.labeled.any()


def test_subset_keeps_ids_aligned() -> None:
    s = toy_split(8)
    sub = s.subset(torch.tensor([5, 1]))
    assert list(sub.ids) == ["s5", "s1"] and torch.equal(sub.x["a"], s.x["a"][[5, 1]])
    assert isinstance(sub.ids, np.ndarray)


def test_unknown_hyperparameter_is_refused_with_the_known_names() -> None:
    from dataclasses import dataclass

    @dataclass
    class H:
        lr: float = 0.1

    assert hparams_from_dict(H, {"lr": 0.5}).lr == 0.5
    with pytest.raises(ValueError, match=r"unknown hyperparameter.*'lrr'.*\['lr'\]"):
        hparams_from_dict(H, {"lrr": 0.5})


def test_a_context_from_a_seed_seeds_its_generator_and_keeps_a_given_clock() -> None:
    budget = TrainBudget(max_epochs=2)
    ctx = TrainContext.from_seed(7, budget)
    assert ctx.seed == 7 and ctx.budget is budget and ctx.device == torch.device("cpu")
    assert ctx.clock.name == "perf_counter" and ctx.epoch_log == [] and ctx.fit_summary == {}
    assert torch.equal(torch.rand(5, generator=ctx.generator), torch.rand(5, generator=torch_generator(7)))
    clock = Clock(torch.device("cpu"))
    assert TrainContext.from_seed(7, budget, "cpu", clock).clock is clock


def test_a_value_outside_a_declaration_is_refused_by_hparams_from_dict() -> None:
    from dataclasses import dataclass

    from benchmark.hparams import Range, hparam

    @dataclass(frozen=True)
    class H:
        lr: float = hparam(0.1, doc="step", source="INF", allowed=Range(0, None, low_open=True))

    with pytest.raises(ValueError, match=r"m: hyperparameter 'lr' = -0.5 is not allowed; allowed: float, > 0"):
        hparams_from_dict(H, {"lr": -0.5}, "m")
