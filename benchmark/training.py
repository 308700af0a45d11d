"""The generic trainer every torch method shares: one optimiser, one epoch budget, early stopping on
the validation split, and tensors that stay on the device, sliced by a seeded permutation (no
DataLoader: for in-memory data it only adds per-batch overhead).

A method supplies a loss on a batch and a scorer on the validation split; the loop is here, once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.contracts import Split, TrainContext

try:  # torch's own counting mode, without the per-module bookkeeping of FlopCounterMode (see step_flop_counter)
    from torch.utils.flop_counter import _FlopCounterMode
except ImportError:  # pragma: no cover - a torch without it: the public class counts the same, a little slower
    _FlopCounterMode = None


@dataclass
class Batch:
    x: dict[str, torch.Tensor]
    mask: torch.Tensor
    y: torch.Tensor
    labeled: torch.Tensor


def batches(split: Split, batch_size: int, generator: torch.Generator):
    """Minibatches of ``split`` in the order of a permutation drawn from ``generator`` (on the CPU, so
    the order is the same on every device). Rows are gathered with ``index_select`` (the same copy as
    ``v[idx]``, without advanced indexing's per-call argument parsing: about half the cost per batch)."""
    perm = torch.randperm(len(split), generator=generator).to(split.mask.device)
    x, mask, y, labeled = split.x, split.mask, split.y, split.labeled
    for idx in perm.split(batch_size) if len(perm) else ():  # split() of an empty tensor is one empty chunk
        yield Batch({k: v.index_select(0, idx) for k, v in x.items()}, mask.index_select(0, idx),
                    y.index_select(0, idx), labeled.index_select(0, idx))


@contextmanager
def step_flop_counter() -> Iterator[Callable[[], float]]:
    """Count the FLOPs of the work inside (PyTorch's counter: matmuls and convolutions); yields a function
    that returns the total once the block has run.

    The same counting as ``FlopCounterMode`` (its registry, decompositions and higher-order operators: it
    is torch's own dispatch mode), minus its per-module breakdown, which registers hooks on every module
    call and costs about a third of the counted step's overhead; only the total is recorded."""
    counter = FlopCounterMode(display=False)
    if _FlopCounterMode is None:  # pragma: no cover
        with counter:
            yield lambda: float(counter.get_total_flops())
        return
    counter.flop_counts.clear()
    mode = _FlopCounterMode(counter)  # its module tracker is never entered: every count goes to "Global"
    with mode:
        yield lambda: float(counter.get_total_flops())


class BestWeights:
    """The weights of the best epoch so far, kept without a deep copy per improvement: the first ``keep``
    deep-copies the state dict (its tensors and metadata), later ones copy into those tensors in place.
    The result is the same state dict a deep copy would give, bit for bit; a state whose keys, shapes or
    dtypes changed since is deep-copied afresh, and non-tensor entries (``get_extra_state``) always are."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def keep(self, net: torch.nn.Module) -> None:
        current = net.state_dict()
        if self.state is None or not self._same_layout(current):
            self.state = copy.deepcopy(current)
            return
        with torch.no_grad():
            for key, value in current.items():
                if isinstance(value, torch.Tensor):
                    self.state[key].copy_(value)
                else:
                    self.state[key] = copy.deepcopy(value)

    def _same_layout(self, current: dict[str, Any]) -> bool:
        kept = self.state
        if kept is None or kept.keys() != current.keys():
            return False
        for key, value in current.items():
            old = kept[key]
            if isinstance(value, torch.Tensor) != isinstance(old, torch.Tensor):
                return False
            if isinstance(value, torch.Tensor) and (
                    value.shape != old.shape or value.dtype != old.dtype or value.device != old.device):
                return False
        return True

    def restore(self, net: torch.nn.Module) -> bool:
        """Load the kept weights into ``net``; False (``net`` unchanged) when none were kept."""
        if self.state is None:
            return False
        net.load_state_dict(self.state)
        return True


def fit_network(
    net: torch.nn.Module,
    loss_fn: Callable[[Batch], torch.Tensor],
    train: Split,
    ctx: TrainContext,
    val_score: Callable[[], float],
    params: list[torch.nn.Parameter] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    *,
    criterion: str = "val_score",
    start_epoch: int = 0,
    can_keep: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """Train ``net`` with Adam on ``loss_fn``; keep the weights with the best ``val_score`` (higher is
    better), stop after ``patience`` eligible epochs without improvement. Returns a summary for the record
    (it is also merged into ``ctx.fit_summary``).

    ``on_epoch_start(epoch)`` runs before an epoch's first batch (e.g. refit a mixture, re-estimate a
    dependence), ``on_epoch_end(epoch)`` after its last step and before validation (e.g. diagnostics);
    both count toward the epoch's time.

    ``criterion`` names what ``val_score`` measures (methods use ``"log_likelihood"`` by default, see
    ``methods._blocks.labeled_log_likelihood``); it is recorded as ``stopping_criterion``.

    Eligibility: an epoch's weights may be kept only if ``epoch >= start_epoch`` and ``can_keep(epoch)`` (asked
    after the epoch's validation; default: always). ``val_score`` still runs after every epoch (and is logged),
    but an ineligible epoch neither becomes the best nor counts toward ``patience``: early stopping starts
    counting at the first eligible epoch (e.g. after a warm-up). If no epoch is eligible, or no eligible score
    beats -inf (e.g. all NaN), the final weights stand and ``best_epoch`` is -1.

    The summary holds ``best_val_score``, ``best_epoch`` (the epoch whose weights were kept, -1: none, the
    final weights), ``epochs_run``, ``steps``, the FLOP estimates, ``stopping_criterion``,
    ``first_eligible_epoch`` (None when none was) and ``kept_before_first_step``: True when the weights the
    network ends with were never changed by an optimisation step. Validation runs after each epoch's steps,
    so this is True only when no step ran before the kept epoch's validation (an empty training split) or
    when the final weights stand and no step ran at all; a kept epoch 0 after one epoch of steps is False."""
    b = ctx.budget
    opt = torch.optim.Adam(params if params is not None else net.parameters(), lr=b.lr, weight_decay=b.weight_decay)
    best, best_epoch, stale = float("-inf"), -1, 0
    kept = BestWeights()
    steps, steps_at_best = 0, 0
    first_eligible: int | None = None
    step_flops = 0.0
    epoch = -1
    for epoch in range(b.max_epochs):
        t0 = ctx.clock.start()
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        net.train()
        total, count = torch.zeros((), device=train.mask.device), 0
        for batch in batches(train, b.batch_size, ctx.generator):
            if steps == 0:
                with step_flop_counter() as total_flops:
                    loss = loss_fn(batch)
                    loss.backward()
                step_flops = total_flops()
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
        if epoch < start_epoch or (can_keep is not None and not can_keep(epoch)):
            continue
        if first_eligible is None:
            first_eligible = epoch
        if score > best:
            best, best_epoch, stale, steps_at_best = score, epoch, 0, steps
            kept.keep(net)
        else:
            stale += 1
            if stale >= b.patience:
                break
    restored = kept.restore(net)
    net.eval()
    kept_steps = steps_at_best if restored else steps
    summary = {"best_val_score": best, "best_epoch": best_epoch, "epochs_run": epoch + 1, "steps": steps,
               "train_flops_per_step": step_flops, "train_flops_estimate": step_flops * steps,
               "stopping_criterion": criterion, "first_eligible_epoch": first_eligible,
               "kept_before_first_step": kept_steps == 0}
    ctx.fit_summary.update(summary)
    return summary


def labeled_accuracy(proba: torch.Tensor, split: Split) -> float:
    """Accuracy on the samples of ``split`` that carry labels (``labeled`` and y >= 0); 0.0 when none do.
    No longer a default stopping criterion (see ``methods._blocks.labeled_log_likelihood``): on an imbalanced
    dataset a flat validation accuracy keeps the first epoch's majority-class predictor."""
    sel = split.labeled & (split.y >= 0)
    if not bool(sel.any()):
        return 0.0
    return float((proba[sel].argmax(dim=1) == split.y[sel]).float().mean())
