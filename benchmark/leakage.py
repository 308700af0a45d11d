"""The leakage check: a method trained and evaluated by the runner itself on data whose labels are
independent of the inputs must not beat chance on the test split. Only a method that reads labels it must
not see can (the test split's labels, through the registry, the caller's frames or the garbage collector).

Why through the runner: every route to the labels that works in a real run (objects alive in the runner's
frames, splits held by the prepared data, the dataset loaded again by name from the registry) works here
too, because the check runs the same code with the same objects alive, and the registry answers the
dataset's name with the null-label data while the check runs. It is a tripwire, not a sandbox: a method
runs in-process and a determined author can find routes no check foresees (README: threat model).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from benchmark import registry
from benchmark.contracts import Method, TrainBudget
from benchmark.data import RawData
from benchmark.execution import RunConditions, execute
from benchmark.protocols import expand_conditions
from benchmark.records import RunSpec

#: The null-label data: synthetic_pid's inputs with a keyed permutation of its labels.
LEAK_DATA = {"n": 2000}
LEAK_BUDGET = TrainBudget(max_epochs=3, patience=2, batch_size=64, width=16)
#: The chance of failing an honest method: the binomial tail above the bound.
FALSE_ALARM = 1e-4


@dataclass(frozen=True)
class LeakResult:
    accuracy: float
    bound: float
    chance: float
    n_test: int
    status: str
    error: str = ""

    @property
    def leaks(self) -> bool:
        return self.status == "ok" and self.accuracy > self.bound


def null_label_dataset(base: type) -> type:
    """``base`` (synthetic_pid's loader) with its labels permuted by a fixed generator: the same inputs,
    labels independent of them. Its parameters say so, so its prepared file is never the real one's."""

    class NullLabels(base):  # type: ignore[misc, valid-type]
        def __init__(self, **params: Any) -> None:
            super().__init__(**{**LEAK_DATA, **params})
            self.params = {**self.params, "labels": "independent of the inputs (leakage check)"}

        def build(self) -> RawData:
            raw = super().build()
            y = np.random.default_rng(20260101).permutation(raw.y)
            return RawData(x=raw.x, y=y, ids=raw.ids)

    NullLabels.__name__ = NullLabels.__qualname__ = f"NullLabels{base.__name__}"
    return NullLabels


@contextmanager
def registry_answers(name: str, cls: type) -> Iterator[None]:
    """While the check runs, ``registry.get("dataset", name)`` returns ``cls`` (the null-label data)."""
    table = registry.datasets()
    previous = table[name]
    table[name] = registry.Plugin(name, cls, previous.path, previous.source_hash)
    try:
        yield
    finally:
        table[name] = previous


def binomial_bound(y_test: np.ndarray) -> tuple[float, float]:
    """Chance (the largest class share: what a constant prediction scores) and the accuracy above which an
    honest method lands with probability below FALSE_ALARM (its predictions are independent of labels that
    are independent of the inputs, so its hits are at most Binomial(n, chance))."""
    n = len(y_test)
    chance = float(np.bincount(y_test).max() / n)
    return chance, float(stats.binom.ppf(1 - FALSE_ALARM, n, chance) / n)


def leakage_check(cls: type[Method], name: str = "synthetic_pid") -> LeakResult:
    base = registry.get("dataset", name).cls
    null = null_label_dataset(base)
    with registry_answers(name, null):
        data = null().load()
        spec = RunSpec(method=cls.name, dataset=name, seed=0, budget=asdict(LEAK_BUDGET), test_conditions=("clean",))
        conditions = RunConditions(train=expand_conditions(["standard"], data.info, "train")[0],
                                   tests=tuple(expand_conditions(["clean"], data.info, "test")))
        body = execute(spec, cls, data, torch.device("cpu"), conditions)
    y_test = data.splits_for(0)["test"].y.cpu().numpy()
    chance, bound = binomial_bound(y_test)
    if body["status"] != "ok":
        err = body.get("error", {})
        return LeakResult(float("nan"), bound, chance, len(y_test), "failed",
                          f"{err.get('type')}: {err.get('message')}")
    return LeakResult(float(body["metrics"]["clean"]["accuracy"]), bound, chance, len(y_test), "ok")
