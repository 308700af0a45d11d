"""The generic trainer every torch method shares: one optimiser, one epoch budget, early stopping on
the validation split, and tensors that stay on the device, sliced by a seeded permutation (no
DataLoader: for in-memory data it only adds per-batch overhead).

A method supplies a loss on a batch and a scorer on the validation split; the loop is here, once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.contracts import Split, TrainContext


@dataclass
class Batch:
    x: dict[str, torch.Tensor]
    mask: torch.Tensor
    y: torch.Tensor
    labeled: torch.Tensor


def batches(split: Split, batch_size: int, generator: torch.Generator):
    """Minibatches of ``split`` in the order of a permutation drawn from ``generator`` (on the CPU, so
    the order is the same on every device)."""
    perm = torch.randperm(len(split), generator=generator).to(split.mask.device)
    for start in range(0, len(perm), batch_size):
        idx = perm[start : start + batch_size]
        yield Batch({k: v[idx] for k, v in split.x.items()}, split.mask[idx], split.y[idx], split.labeled[idx])


def fit_network(
    net: torch.nn.Module,
    loss_fn: Callable[[Batch], torch.Tensor],
    train: Split,
    ctx: TrainContext,
    val_score: Callable[[], float],
    params: list[torch.nn.Parameter] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Train ``net`` with Adam on ``loss_fn``; keep the weights with the best ``val_score`` (higher is
    better), stop after ``patience`` epochs without improvement. Returns a summary for the record.

    ``on_epoch_start(epoch)`` runs before an epoch's first batch (e.g. refit a mixture, re-estimate a
    dependence), ``on_epoch_end(epoch)`` after its last step and before validation (e.g. diagnostics);
    both count toward the epoch's time."""
    b = ctx.budget
    opt = torch.optim.Adam(params if params is not None else net.parameters(), lr=b.lr, weight_decay=b.weight_decay)
    best, best_state, best_epoch, stale = float("-inf"), None, -1, 0
    steps = 0
    step_flops = 0.0
    for epoch in range(b.max_epochs):
        t0 = ctx.clock.start()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        net.train()
        total, count = torch.zeros((), device=train.mask.device), 0
        for batch in batches(train, b.batch_size, ctx.generator):
            if steps == 0:
                with FlopCounterMode(display=False) as counter:
                    loss = loss_fn(batch)
                    loss.backward()
                step_flops = float(counter.get_total_flops())
            else:
                loss = loss_fn(batch)
                loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.detach()
            count += 1
            steps += 1
        net.eval()
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        score = float(val_score())
        seconds = ctx.clock.stop(t0)
        ctx.log_epoch(epoch=epoch, train_loss=float(total) / max(count, 1), val_score=score, seconds=seconds)
        if score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= b.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    summary = {"best_val_score": best, "best_epoch": best_epoch, "epochs_run": epoch + 1, "steps": steps,
            "train_flops_per_step": step_flops, "train_flops_estimate": step_flops * steps}
    ctx.fit_summary.update(summary)
    return summary


def labeled_accuracy(proba: torch.Tensor, split: Split) -> float:
    """Accuracy on the samples of ``split`` that carry labels (validation labels are always kept)."""
    sel = split.labeled
    if not bool(sel.any()):
        return 0.0
    return float((proba[sel].argmax(dim=1) == split.y[sel]).float().mean())
