"""Capacity in plain sight: a method's parameter count at a given width, and the width that brings it closest
to a parameter budget (the suite option ``param_budget``), so that methods can be compared at equal size
instead of at equal ``width`` (whose parameter counts differ up to 30x between methods).

The count comes from a *dry fit*: the method's own ``fit`` runs on a tiny synthetic split of the dataset's
shapes and is stopped where it first hands a network to the shared trainer (``fit_network``), before any
training step. So every network ``fit`` builds is counted exactly as ``Method.n_parameters()`` counts it after
a real fit (extra heads, coalition models, state set up in ``fit`` such as the DRO dependence heads), without
knowing how each method builds them. A method may instead define a class-level hook
``n_parameters_at(info, hparams, width) -> int``; it is used when present.

Limit: networks built after the first ``fit_network`` call are not seen (no current method builds any for
the quick suite's datasets; conformal_shapley's permutation estimator, used above ``exact_max_modalities``
modalities, trains extra coalitions lazily, and which ones depends on the data).
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from benchmark import training
from benchmark.contracts import DatasetInfo, Method, Split, TrainBudget, TrainContext, hparams_to_dict

#: Rows per class of the dry fit's synthetic training and validation splits (every class present, so that
#: fit-time splits such as conformal_shapley's calibration part are never empty).
ROWS_PER_CLASS = 4
#: Modules whose global ``fit_network`` a dry fit intercepts: the methods' plug-in package and the trainer.
_PLUGIN_PACKAGE = "benchmark.plugins_methods"


class _NetworksBuilt(Exception):  # noqa: N818 - a signal, not an error
    """Raised in place of training: carries the parameters the trainer was handed."""

    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        super().__init__("dry fit: stopped before the first training step")
        self.params = params


_probing = threading.local()
_patch_lock = threading.Lock()
_real_fit_network = training.fit_network


def _intercepting_fit_network(net: torch.nn.Module, *args: Any, **kwargs: Any) -> dict[str, float]:
    """``fit_network`` for the probing thread: stop with the network; any other thread trains as usual."""
    if not getattr(_probing, "active", False):
        return _real_fit_network(net, *args, **kwargs)
    params = inspect.signature(_real_fit_network).bind_partial(net, *args, **kwargs).arguments.get("params")
    raise _NetworksBuilt([*net.parameters(), *(params or [])])


def _modules_calling_fit_network(method_cls: type) -> Iterator[Any]:
    names = {method_cls.__module__, training.__name__}
    for name, module in list(sys.modules.items()):
        in_scope = name in names or name.startswith(_PLUGIN_PACKAGE + ".")
        if in_scope and getattr(module, "fit_network", None) is _real_fit_network:
            yield module


@contextmanager
def _dry_fit(method_cls: type) -> Iterator[None]:
    """Route ``fit_network`` through the interceptor while this thread probes (other threads unaffected)."""
    with _patch_lock:
        patched = list(_modules_calling_fit_network(method_cls))
        for module in patched:
            module.fit_network = _intercepting_fit_network
        _probing.active = True
        try:
            yield
        finally:
            _probing.active = False
            for module in patched:
                module.fit_network = _real_fit_network


def _synthetic_split(info: DatasetInfo, seed: int) -> Split:
    """A small labelled split of the dataset's shapes (standard normal inputs, every class present)."""
    n = ROWS_PER_CLASS * info.n_classes
    g = torch.Generator().manual_seed(seed)
    x = {m.name: torch.randn((n, *m.shape), generator=g) for m in info.modalities}
    y = torch.arange(n) % info.n_classes
    return Split(x=x, mask=torch.ones(n, len(info.modalities), dtype=torch.bool), y=y,
                 labeled=torch.ones(n, dtype=torch.bool), ids=np.array([f"capacity-{seed}-{i}" for i in range(n)]))


def _count(params: list[torch.nn.Parameter]) -> int:
    seen: dict[int, int] = {}
    for p in params:
        seen[id(p)] = p.numel()
    return sum(seen.values())


def _probe(method_cls: type, info: DatasetInfo, hparams: Any, width: int) -> int:
    hook: Callable[..., int] | None = getattr(method_cls, "n_parameters_at", None)
    if callable(hook):
        return int(hook(info, hparams, width))
    method: Method = method_cls(info, hparams)
    ctx = TrainContext.from_seed(0, TrainBudget(max_epochs=1, patience=1, width=width))
    with _dry_fit(method_cls):
        try:
            method.fit(_synthetic_split(info, 0), _synthetic_split(info, 1), ctx)
        except _NetworksBuilt as built:
            return _count([p for m in method.modules() for p in m.parameters()] + built.params)
    # fit never called the shared trainer: it trained one epoch on the synthetic split, so count what it built
    return method.n_parameters()


_cache: dict[tuple, int] = {}


def n_parameters_at(method_cls: type, info: DatasetInfo, hparams: Any, width: int) -> int:
    """The parameter count ``method_cls(info, hparams)`` has after ``fit`` with this width, without training
    (see the module docstring). The networks are built for real, so keep ``width`` near the sizes of interest;
    ``width_for_budget`` only builds up to about twice the width it returns."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    key = (method_cls, info, repr(hparams_to_dict(hparams) if hparams is not None else None), int(width))
    if key not in _cache:
        _cache[key] = _probe(method_cls, info, hparams, int(width))
    return _cache[key]


def width_for_budget(method_cls: type, info: DatasetInfo, hparams: Any, target: int, low: int = 1,
                     high: int = 4096) -> tuple[int, int]:
    """(width, n_parameters): the width in [low, high] whose parameter count is closest to ``target`` (ties go
    to the smaller width). The count is non-decreasing in width, so the search doubles the width until it
    reaches the target, bisects, then compares the two widths around the target; it never builds a network
    much larger than the answer."""
    if target <= 0:
        raise ValueError(f"param_budget must be a positive number of parameters, got {target}")
    if not 1 <= low <= high:
        raise ValueError(f"need 1 <= low <= high, got low={low}, high={high}")

    def count(w: int) -> int:
        return n_parameters_at(method_cls, info, hparams, w)

    # Doubling: the first width with count >= target (or high), and the last one below it.
    below, above = low - 1, low
    while count(above) < target and above < high:
        below, above = above, min(2 * above, high)
    if count(above) < target:
        return above, count(above)  # even the widest network is below the budget
    # Bisection: the smallest width with count >= target lies in (below, above].
    while above - below > 1:
        mid = (below + above) // 2
        if count(mid) >= target:
            above = mid
        else:
            below = mid
    candidates = [w for w in (above - 1, above) if w >= low]
    best = min(candidates, key=lambda w: (abs(count(w) - target), w))
    return best, count(best)
