"""The contracts every method and dataset plugs into (see DESIGN.md, "Data contract", "Method contract")."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from benchmark.hparams import validate
from benchmark.seeding import torch_generator
from benchmark.timing import Clock

ModalityKind = Literal["tabular", "image", "sequence"]


@dataclass(frozen=True)
class Modality:
    name: str
    kind: ModalityKind
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class DatasetInfo:
    """What a method may know about a dataset before it sees data."""

    name: str
    modalities: tuple[Modality, ...]
    n_classes: int

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)


@dataclass
class Split:
    """One split. ``mask[:, j]`` is True where modality j is present; missing entries are zero-filled.

    ``y`` holds -1 for samples whose label was removed (unlabelled training samples), so a method
    cannot read a label it was not given. ``ids`` are stable across runs and key per-sample randomness.
    """

    x: dict[str, torch.Tensor]
    mask: torch.Tensor
    y: torch.Tensor
    labeled: torch.Tensor
    ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name, arr in self.x.items():
            if arr.shape[0] != n:
                raise ValueError(f"modality {name!r} has {arr.shape[0]} rows but the split has {n} ids")
        if self.mask.shape != (n, len(self.x)) or self.mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool of shape ({n}, {len(self.x)}), got {tuple(self.mask.shape)}")
        if self.y.shape != (n,) or self.labeled.shape != (n,):
            raise ValueError("y and labeled must have one entry per sample")
        if bool(((self.y < 0) & self.labeled).any()):
            raise ValueError("a sample is flagged labeled but has no label")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.x)

    def to(self, device: torch.device | str) -> Split:
        return dataclasses.replace(
            self,
            x={k: v.to(device) for k, v in self.x.items()},
            mask=self.mask.to(device),
            y=self.y.to(device),
            labeled=self.labeled.to(device),
        )

    def subset(self, index: torch.Tensor | np.ndarray) -> Split:
        idx = torch.as_tensor(index, device=self.mask.device)
        return Split(
            x={k: v[idx] for k, v in self.x.items()},
            mask=self.mask[idx],
            y=self.y[idx],
            labeled=self.labeled[idx],
            ids=self.ids[np.asarray(torch.as_tensor(index).cpu())],
        )

    def with_inputs(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> Split:
        """A copy with new inputs; entries behind the mask are zero-filled, as the contract says."""
        filled = {}
        for j, (name, arr) in enumerate(x.items()):
            keep = mask[:, j].reshape(-1, *([1] * (arr.dim() - 1)))
            filled[name] = torch.where(keep, arr, torch.zeros((), dtype=arr.dtype, device=arr.device))
        return dataclasses.replace(self, x=filled, mask=mask)

    def copy(self) -> Split:
        """A deep copy: what a method is handed, so nothing it does to its inputs reaches another run."""
        return dataclasses.replace(self, x={k: v.clone() for k, v in self.x.items()}, mask=self.mask.clone(),
                                   y=self.y.clone(), labeled=self.labeled.clone())

    def without_labels(self) -> Split:
        """The split as a method sees it at test time: no labels at all."""
        return dataclasses.replace(
            self, y=torch.full_like(self.y, -1), labeled=torch.zeros_like(self.labeled)
        )


@dataclass(frozen=True)
class TrainBudget:
    """The training budget every method shares, so that methods differ in objective, not in tuning."""

    max_epochs: int = 50
    patience: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 128


@dataclass
class TrainContext:
    """What the runner hands a method's ``fit``: device, seed, a seeded generator, budget and a log."""

    device: torch.device
    seed: int
    generator: torch.Generator
    budget: TrainBudget
    clock: Clock
    epoch_log: list[dict[str, float]] = field(default_factory=list)
    fit_summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_seed(cls, seed: int, budget: TrainBudget, device: torch.device | str = "cpu",
                  clock: Clock | None = None) -> TrainContext:
        """The one way to build a context from a seed, so every caller seeds the generator alike (on the
        CPU, whatever the device: methods draw there and move the draws)."""
        device = torch.device(device)
        return cls(device=device, seed=seed, generator=torch_generator(seed), budget=budget,
                   clock=clock if clock is not None else Clock(device))

    def log_epoch(self, **values: float) -> None:
        self.epoch_log.append(dict(values))


@dataclass(frozen=True)
class NoHparams:
    """For a method without hyperparameters of its own."""


class Method(ABC):
    """A method: ``fit`` on the training split, then ``predict_proba`` on inputs without labels.

    Subclasses set ``name`` (the registry key) and ``Hparams`` (a dataclass whose defaults are the
    paper's settings; every reconstructed [INF] choice is a field, declared with ``benchmark.hparams.hparam``;
    the constructor refuses values its declaration does not allow). ``extras`` is the hook through which
    a method exposes diagnostics; the runner stores them in the run record. A method may also define
    ``evaluate_extras(x, mask) -> {name: {"kind": ..., arrays}}`` with per-sample outputs that need test
    labels to score (interval coverage, accuracy against q): the runner scores them on the clean test split
    (``benchmark.execution.score_method_extras``) and stores the result as ``extras_test``.
    """

    name: ClassVar[str]
    Hparams: ClassVar[type] = NoHparams

    def __init__(self, info: DatasetInfo, hparams: Any | None = None) -> None:
        self.info = info
        hparams = hparams if hparams is not None else self.Hparams()
        self.hparams = validate(type(hparams), hparams, getattr(self, "name", type(self).__name__))

    @abstractmethod
    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None: ...

    @abstractmethod
    def predict_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor: ...

    def extras(self) -> dict[str, Any]:
        """Diagnostics to record with the run (JSON-serialisable). Empty by default."""
        return {}

    def modules(self) -> list[torch.nn.Module]:
        """The networks whose parameters count toward the method's size."""
        return [v for v in vars(self).values() if isinstance(v, torch.nn.Module)]

    def n_parameters(self) -> int:
        return sum(p.numel() for m in self.modules() for p in m.parameters())


def hparams_from_dict(cls: type, values: Mapping[str, Any] | None, method: str = "") -> Any:
    """Build a method's Hparams from a suite's overrides, refusing names the method does not have and
    values its declarations do not allow (``benchmark.hparams.validate``)."""
    return validate(cls, dict(values or {}), method)


def hparams_to_dict(hparams: Any) -> dict[str, Any]:
    return dataclasses.asdict(hparams) if dataclasses.is_dataclass(hparams) else {}
