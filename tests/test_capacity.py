"""Capacity: a method's parameter count at a width without training (the dry fit) agrees with a real fit, and
``width_for_budget`` brings every method within 15% of a parameter budget on the quick suite's datasets."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import tomllib

import pytest
import torch

from benchmark import capacity, registry, training
from benchmark.capacity import n_parameters_at, width_for_budget
from benchmark.contracts import DatasetInfo, Method, Split, TrainBudget, TrainContext
from benchmark.paths import REPO_ROOT

BUDGET = 20_000
TOLERANCE = 0.15
#: Rows of the real fits (mfeat's full training split makes conformal_shapley's 63 coalitions slow).
TRAIN_ROWS, VAL_ROWS = 100, 40
#: Smaller data for the real fits (a method's networks depend on the modalities' shapes only, not on n).
DATA_PARAMS = {"synthetic_pid": {"n": 300}}


def _quick_datasets() -> list[str]:
    suite = tomllib.loads((REPO_ROOT / "benchmark" / "suites" / "quick.toml").read_text())
    return [d if isinstance(d, str) else d["name"] for d in suite["datasets"]]


QUICK_DATASETS = _quick_datasets()
METHODS = sorted(registry.methods())


@functools.cache
def _splits(dataset: str) -> tuple[DatasetInfo, Split, Split]:
    """The dataset's info and the first rows of its training and validation splits (prepared on first use)."""
    data = registry.get("dataset", dataset).cls(**DATA_PARAMS.get(dataset, {})).load()
    train, val = data.splits["train"], data.splits["val"]
    return (data.info, train.subset(torch.arange(min(TRAIN_ROWS, len(train)))),
            val.subset(torch.arange(min(VAL_ROWS, len(val)))))


@functools.cache
def _chosen(method: str, dataset: str) -> tuple[int, int]:
    info = registry.get("dataset", dataset).cls().info
    return width_for_budget(registry.get("method", method).cls, info, None, BUDGET)


def _fitted_count(method: Method, dataset: str, width: int) -> int:
    _, train, val = _splits(dataset)
    method.fit(train, val, TrainContext.from_seed(0, TrainBudget(max_epochs=1, patience=1, width=width)))
    return method.n_parameters()


def test_quick_suite_datasets_are_known() -> None:
    assert QUICK_DATASETS and set(QUICK_DATASETS) <= set(registry.datasets())


@pytest.mark.parametrize("dataset", QUICK_DATASETS)
@pytest.mark.parametrize("method", METHODS)
def test_budget_width_is_within_tolerance_and_matches_a_real_fit(method: str, dataset: str) -> None:
    width, count = _chosen(method, dataset)
    cls = registry.get("method", method).cls
    info = registry.get("dataset", dataset).cls().info
    smallest = n_parameters_at(cls, info, None, 1)
    assert smallest <= BUDGET * (1 + TOLERANCE), (
        f"{method} on {dataset} cannot reach {BUDGET} parameters within {TOLERANCE:.0%}: its smallest network "
        f"(width 1) already has {smallest} (a fixed-size part larger than the budget)")
    assert abs(count - BUDGET) <= TOLERANCE * BUDGET, (
        f"{method} on {dataset}: width {width} gives {count} parameters, more than {TOLERANCE:.0%} from {BUDGET}")
    # the closest width: its neighbours are no closer
    for w in (width - 1, width + 1):
        if w >= 1:
            assert abs(n_parameters_at(cls, info, None, w) - BUDGET) >= abs(count - BUDGET)
    assert _fitted_count(cls(info), dataset, width) == count


#: Hparams that change which networks ``fit`` builds (extra heads, probes, a surrogate instead of coalitions).
VARIANTS = [
    ("mm_dro", {"head": "late", "aux_head": "mlp"}),
    ("mm_dro", {"dependence": "independent"}),
    ("ef_dro", {"radius": "probe_budget"}),
    ("ef_dro", {"network": "per_modality"}),
    ("robult", {"head_hidden": 64, "fusion_mask_input": False}),
    ("gmm_adaptive", {"unimodal_heads": "split"}),
    ("conformal_shapley", {"coalition_models": "masked_surrogate"}),
    ("early_fusion", {"mask_as_input": False}),
]


@pytest.mark.parametrize(("method", "overrides"), VARIANTS, ids=[f"{m}-{'-'.join(o)}" for m, o in VARIANTS])
def test_dry_fit_counts_the_networks_hparams_switch_on(method: str, overrides: dict) -> None:
    cls = registry.get("method", method).cls
    info, _, _ = _splits("synthetic_pid")
    hparams = dataclasses.replace(cls.Hparams(), **overrides)
    width = 12
    expected = n_parameters_at(cls, info, hparams, width)
    assert expected != n_parameters_at(cls, info, None, width)  # the variant does change the networks
    assert _fitted_count(cls(info, hparams), "synthetic_pid", width) == expected


def test_search_is_deterministic_and_finds_the_exhaustive_answer() -> None:
    cls = registry.get("method", "mm_dro").cls
    info = registry.get("dataset", "synthetic_pid").cls().info
    first = width_for_budget(cls, info, None, 50_000)
    capacity._cache.clear()
    assert width_for_budget(cls, info, None, 50_000) == first
    widths = range(1, 2 * first[0] + 2)
    counts = [n_parameters_at(cls, info, None, w) for w in widths]
    assert counts == sorted(counts)  # non-decreasing, as the bisection assumes
    best = min(widths, key=lambda w: (abs(counts[w - 1] - 50_000), w))
    assert first == (best, counts[best - 1])


def test_search_bounds_and_refusals() -> None:
    cls = registry.get("method", "early_fusion").cls
    info = registry.get("dataset", "synthetic_pid").cls().info
    with pytest.raises(ValueError, match="param_budget"):
        width_for_budget(cls, info, None, 0)
    with pytest.raises(ValueError, match="param_budget"):
        width_for_budget(cls, info, None, -5)
    assert width_for_budget(cls, info, None, 1) == (1, n_parameters_at(cls, info, None, 1))  # below the smallest
    assert width_for_budget(cls, info, None, 10**12, high=32) == (32, n_parameters_at(cls, info, None, 32))


def test_dry_fit_leaves_the_trainer_in_place() -> None:
    capacity._cache.clear()
    robult = importlib.import_module(registry.get("method", "robult").cls.__module__)
    n_parameters_at(registry.get("method", "robult").cls, registry.get("dataset", "synthetic_pid").cls().info,
                    None, 3)
    assert robult.fit_network is training.fit_network
    assert capacity._real_fit_network is training.fit_network
