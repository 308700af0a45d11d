"""Hyperparameters with a default and a search space, drawn seeded by name (as DomainBed does).

Declare a method's hyperparameter with ``hparam(default, space)`` in its frozen Hparams dataclass.
Draw 0 is the defaults; draw k >= 1 samples every hyperparameter that has a space from a generator keyed
on (method, hyperparameter name, k), so adding a hyperparameter leaves every other draw unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.seeding import keyed_rng


class Space:
    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class LogUniform(Space):
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform(Space):
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform(Space):
    low: int
    high: int  # inclusive

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def describe(self) -> str:
        return f"integer [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Choice(Space):
    options: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def describe(self) -> str:
        return f"one of {list(self.options)}"


def hparam(default: Any, space: Space | None = None, doc: str = "") -> Any:
    """A dataclass field with a default and, optionally, the space that search draws from."""
    return dataclasses.field(default=default, metadata={"space": space, "doc": doc})


def spaces(cls: type) -> dict[str, Space]:
    if not dataclasses.is_dataclass(cls):
        return {}
    return {f.name: f.metadata["space"] for f in dataclasses.fields(cls) if f.metadata.get("space") is not None}


def draw(cls: type, method: str, index: int) -> dict[str, Any]:
    """The values of draw ``index`` (0 = the defaults) for the fields that have a space."""
    if index < 0:
        raise ValueError(f"hyperparameter draw must be >= 0, got {index}")
    if index == 0:
        return {}
    return {name: space.sample(keyed_rng("hparam", method, name, index)) for name, space in spaces(cls).items()}
