"""The lean trainer (issue 25, point 2): its FLOP count, its kept weights and its batches are the same as the
slower code they replace, checked against PyTorch's public ``FlopCounterMode``, a hand count of the matmuls,
``copy.deepcopy`` of the state dict and advanced indexing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark.contracts import Split, TrainBudget, TrainContext
from benchmark.seeding import torch_generator
from benchmark.training import BestWeights, batches, fit_network, step_flop_counter


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.seq = nn.Conv1d(2, 3, 5, padding=2)
        self.head = nn.Linear(4 * 4 * 4 + 3, 5)

    def forward(self, img: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.conv(img), self.seq(seq).mean(dim=2)], dim=1))


class _Bank(nn.Module):
    """Stacked per-coalition networks, as conformal_shapley's bank: bmm and baddbmm-style work."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(3, 6, 8))
        self.w2 = nn.Parameter(torch.randn(3, 8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bmm(torch.relu(torch.matmul(x, self.w1)), self.w2)


def _cases():
    g = torch.Generator().manual_seed(0)
    mlp = _mlp([7, 16, 16, 3])
    x, y = torch.randn(11, 7, generator=g), torch.randint(0, 3, (11,), generator=g)
    yield "mlp", mlp, lambda: nn.functional.cross_entropy(mlp(x), y)
    conv = _Conv()
    img, seq = torch.randn(9, 1, 8, 8, generator=g), torch.randn(9, 2, 10, generator=g)
    yield "conv", conv, lambda: conv(img, seq).logsumexp(1).mean()
    bank = _Bank()
    xb = torch.randn(13, 6, generator=g)
    yield "bank", bank, lambda: bank(xb).square().mean()
    keep = y > 0  # data-dependent rows: the count follows the rows actually used
    yield "rows", mlp, lambda: nn.functional.cross_entropy(mlp(x[keep]), y[keep])


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_step_flop_counter_counts_what_flop_counter_mode_counts(case) -> None:
    _, net, loss = case
    with FlopCounterMode(display=False) as reference:
        loss().backward()
    with step_flop_counter() as total:
        loss().backward()
    assert total() == float(reference.get_total_flops()) > 0


def test_step_flop_counter_matches_a_hand_count_of_an_mlp_step() -> None:
    sizes, n = [7, 16, 16, 3], 11
    net = _mlp(sizes)
    x, y = torch.randn(n, 7), torch.randint(0, 3, (n,))
    with step_flop_counter() as total:
        nn.functional.cross_entropy(net(x), y).backward()
    per_layer = [2 * n * a * b for a, b in zip(sizes, sizes[1:], strict=False)]
    # forward and weight gradient for every layer; the input gradient for all but the first (x needs none)
    assert total() == 3 * sum(per_layer) - per_layer[0]


class _WithExtra(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.note = {"calls": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.note["calls"] += 1
        return self.bn(self.lin(x))

    def get_extra_state(self):
        return dict(self.note)

    def set_extra_state(self, state) -> None:
        self.note = dict(state)


def _states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_best_weights_keeps_what_a_deep_copy_keeps_buffers_and_extra_state_included() -> None:
    torch.manual_seed(0)
    net = _WithExtra()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    kept, snapshots = BestWeights(), []
    for step in range(5):
        net.train()
        net(torch.randn(8, 3)).square().mean().backward()
        opt.step()
        opt.zero_grad()
        if step in (0, 2, 3):
            kept.keep(net)
            snapshots.append(copy.deepcopy(net.state_dict()))
            assert _states_equal(kept.state, snapshots[-1])
    assert not _states_equal(snapshots[0], snapshots[-1])  # the weights did move between keeps
    fresh = _WithExtra()
    assert kept.restore(fresh)
    assert _states_equal(fresh.state_dict(), snapshots[-1]) and fresh.note == {"calls": 4}
    assert BestWeights().restore(fresh) is False


def test_best_weights_copies_afresh_when_the_layout_changes() -> None:
    net = nn.Linear(3, 2)
    kept = BestWeights()
    kept.keep(net)
    first = kept.state["weight"]
    net.weight = nn.Parameter(torch.randn(2, 3, dtype=torch.float64))  # same shape, new dtype
    kept.keep(net)
    assert kept.state["weight"].dtype == torch.float64 and kept.state["weight"] is not first
    assert torch.equal(kept.state["weight"], net.weight.detach())
    kept.state["weight"].add_(1)  # the kept tensors are copies, never the live ones
    assert not torch.equal(kept.state["weight"], net.weight.detach())


def _split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + y[:, None]
    img = torch.randn(n, 2, 3, generator=g)
    return Split(x={"a": x, "b": img}, mask=torch.rand(n, 2, generator=g) > 0.2, y=y,
                 labeled=torch.rand(n, generator=g) > 0.3, ids=np.array([f"s{i}" for i in range(n)]))


def test_batches_are_the_rows_advanced_indexing_picks_in_the_seeded_order() -> None:
    split = _split(23, 0)
    got = list(batches(split, 5, torch.Generator().manual_seed(7)))
    perm = torch.randperm(23, generator=torch.Generator().manual_seed(7))
    assert [len(b.y) for b in got] == [5, 5, 5, 5, 3]
    for b, idx in zip(got, perm.split(5), strict=True):
        assert all(torch.equal(b.x[k], v[idx]) for k, v in split.x.items())
        assert torch.equal(b.mask, split.mask[idx]) and torch.equal(b.y, split.y[idx])
        assert torch.equal(b.labeled, split.labeled[idx])


def test_fit_network_keeps_the_best_epochs_whole_state_with_batch_norm() -> None:
    """The kept state (running statistics included) is the one the best epoch ended with, and the run's
    FLOP count is the public counter's count of its first step."""
    train = _split(64, 1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    snapshots: list[dict] = []
    scores = iter([0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.1])

    def loss(batch) -> torch.Tensor:
        return nn.functional.cross_entropy(net(batch.x["a"]), batch.y)

    ctx = TrainContext.from_seed(0, TrainBudget(max_epochs=7, patience=3, batch_size=16, lr=1e-2, width=8))
    summary = fit_network(net, loss, train, ctx, val_score=lambda: next(scores),
                          on_epoch_end=lambda e: snapshots.append(copy.deepcopy(net.state_dict())))
    assert summary["best_epoch"] == 3 and summary["epochs_run"] == 7
    assert _states_equal(net.state_dict(), snapshots[3])
    assert not _states_equal(snapshots[3], snapshots[-1])
    first = next(batches(train, 16, torch_generator(0)))  # the run's first batch: the same seeded draw
    net.train()
    with FlopCounterMode(display=False) as reference:
        loss(first).backward()
    assert summary["train_flops_per_step"] == float(reference.get_total_flops()) > 0
    assert summary["train_flops_estimate"] == summary["train_flops_per_step"] * summary["steps"]


def test_an_empty_split_has_no_batches() -> None:
    assert list(batches(_split(23, 0).subset(torch.arange(0)), 5, torch.Generator().manual_seed(0))) == []
