"""The protocol base: a named, versioned, documented pure function of (split, parameters, seed).

Conditions are written ``name[arg, arg]`` (``clean``, ``random_missing[0.3]``,
``gaussian_noise[pixels,3]``); a ``*`` argument expands to the protocol's grid for that parameter (every
modality it applies to, every severity). Every draw is keyed on (protocol, version, parameters, seed,
sample id), so each method sees byte-identical inputs and a sample's draw ignores the other samples.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark.contracts import DatasetInfo, Split
from benchmark.seeding import key_to_int, keyed_uniforms

Arg = str | float


class ProtocolError(ValueError):
    """A condition asked for a parameter its protocol does not allow."""


@dataclass(frozen=True)
class Condition:
    protocol: str
    args: tuple[Arg, ...] = ()

    @property
    def key(self) -> str:
        if not self.args:
            return self.protocol
        return f"{self.protocol}[{','.join(_fmt(a) for a in self.args)}]"

    @classmethod
    def parse(cls, key: str) -> Condition:
        key = key.strip()
        if "[" not in key:
            return cls(key)
        name, rest = key.split("[", 1)
        if not rest.endswith("]"):
            raise ProtocolError(f"condition {key!r} should look like name[arg,...]")
        return cls(name.strip(), tuple(_parse_arg(a) for a in rest[:-1].split(",")))


def _parse_arg(text: str) -> Arg:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text


def _fmt(arg: Arg) -> str:
    if isinstance(arg, float) and arg.is_integer() and abs(arg) >= 1:
        return str(int(arg))
    return str(arg)


def _fmt_list(values: Sequence[Arg]) -> str:
    return "[" + ", ".join(_fmt(v) for v in values) + "]"


@dataclass(frozen=True)
class Param:
    """One parameter of a protocol.

    kind: ``modality`` (a modality name, restricted to ``kinds``), ``level`` (one of ``grid``),
    ``rate`` (a number in ``bounds``, open below, closed above; ``grid`` is what ``*`` expands to),
    ``choice`` (one of ``grid``), ``pattern`` (modality names joined by ``+``), ``count`` (an integer
    from 0 to the number of modalities).
    """

    name: str
    kind: str
    grid: tuple[Arg, ...] = ()
    bounds: tuple[float, float] = (0.0, 1.0)
    kinds: tuple[str, ...] = ("tabular", "image", "sequence")
    default: Arg | None = None
    doc: str = ""

    def describe(self) -> str:
        if self.kind == "modality":
            return f"{self.name}: a modality name ({'/'.join(self.kinds)})"
        if self.kind == "rate":
            return f"{self.name}: a number in ({self.bounds[0]:g}, {self.bounds[1]:g}], * = {_fmt_list(self.grid)}"
        if self.kind == "pattern":
            return f"{self.name}: present modalities joined by '+', * = every non-empty subset"
        if self.kind == "count":
            return f"{self.name}: 0 .. number of modalities (default {_fmt(self.default or 0.0)})"
        return f"{self.name}: one of {_fmt_list(self.grid)}"


class Protocol(ABC):
    """Subclasses set ``name``, ``version``, ``family``, ``stage`` ("test" or "train") and ``params``,
    and implement ``apply``. ``severity_param`` names the parameter along which accuracy is a curve
    (its value 0 being the clean condition), or None. Bump ``version`` whenever the output changes."""

    name: ClassVar[str]
    version: ClassVar[int]
    family: ClassVar[str]
    stage: ClassVar[str] = "test"
    params: ClassVar[tuple[Param, ...]] = ()
    severity_param: ClassVar[str | None] = None

    @abstractmethod
    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split: ...

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        return " ".join((self.__doc__ or "").strip().split("\n\n")[0].split())

    # --- parameters -------------------------------------------------------------------------------
    def full_args(self, args: Sequence[Arg]) -> tuple[Arg, ...]:
        if len(args) > len(self.params):
            raise ProtocolError(f"{self.name}: takes {len(self.params)} parameter(s) "
                                f"({', '.join(p.name for p in self.params) or 'none'}), got {list(args)}")
        missing = [p for p in self.params[len(args):] if p.default is None]
        if missing:
            raise ProtocolError(f"{self.name}: parameter {missing[0].name} is required ({missing[0].describe()})")
        return tuple(args) + tuple(p.default for p in self.params[len(args):])  # type: ignore[misc]

    def canonical(self, full: tuple[Arg, ...]) -> tuple[Arg, ...]:
        """The arguments without trailing defaults: ``random_missing[0.3]``, not ``[0.3,1]``."""
        args = list(full)
        while args and args[-1] == self.params[len(args) - 1].default:
            args.pop()
        return tuple(args)

    def validate(self, args: Sequence[Arg], info: DatasetInfo) -> tuple[Arg, ...]:
        """The arguments with defaults filled in; a ProtocolError naming the parameter and the allowed
        values when one is wrong."""
        full = self.full_args(args)
        for p, value in zip(self.params, full, strict=True):
            allowed = self._allowed(p, info)
            ok = self._check(p, value, info)
            if not ok:
                raise ProtocolError(f"{self.name}: parameter {p.name}={value!r} is not allowed; allowed: {allowed}")
        return full

    def _allowed(self, p: Param, info: DatasetInfo) -> str:
        if p.kind == "modality":
            return str([m.name for m in info.modalities if m.kind in p.kinds])
        return p.describe()

    def _check(self, p: Param, value: Arg, info: DatasetInfo) -> bool:
        if p.kind == "modality":
            return any(m.name == value and m.kind in p.kinds for m in info.modalities)
        if p.kind in ("level", "choice"):
            return value in p.grid
        if p.kind == "rate":
            return isinstance(value, float) and p.bounds[0] < value <= p.bounds[1]
        if p.kind == "count":
            return isinstance(value, float) and value.is_integer() and 0 <= value <= len(info.modalities)
        if p.kind == "pattern":
            names = str(value).split("+")
            return len(set(names)) == len(names) and set(names) <= set(info.modality_names)
        raise AssertionError(p.kind)

    def expand(self, args: Sequence[Arg], info: DatasetInfo) -> list[tuple[Arg, ...]]:
        """Every argument tuple a ``*`` stands for."""
        choices = []
        for p, value in zip(self.params, self.full_args(args), strict=True):
            choices.append(self.grid(p, info) if value == "*" else [value])
        return [tuple(c) for c in itertools.product(*choices)]

    def grid(self, p: Param, info: DatasetInfo) -> list[Arg]:
        if p.kind == "modality":
            return [m.name for m in info.modalities if m.kind in p.kinds]
        if p.kind == "pattern":
            return all_patterns(info.modality_names)
        return list(p.grid)

    def severity(self, args: tuple[Arg, ...]) -> float | None:
        if self.severity_param is None:
            return None
        index = [p.name for p in self.params].index(self.severity_param)
        return float(self.full_args(args)[index])

    # --- keyed randomness -------------------------------------------------------------------------
    def key(self, args: tuple[Arg, ...], seed: int, *extra: object) -> tuple[object, ...]:
        return (self.name, self.version, ",".join(_fmt(a) for a in args), seed, *extra)

    def uniforms(self, split: Split, args: tuple[Arg, ...], seed: int, *extra: object) -> np.ndarray:
        return keyed_uniforms(split.ids, *self.key(args, seed, *extra))

    def normals(self, split: Split, shape: tuple[int, ...], args: tuple[Arg, ...], seed: int,
                *extra: object) -> np.ndarray:
        """Standard normal draws of ``shape`` per sample, each from a generator keyed on its id."""
        key = self.key(args, seed, *extra)
        out = np.empty((len(split), *shape), dtype=np.float32)
        for i, sid in enumerate(split.ids):
            out[i] = np.random.default_rng(key_to_int(*key, sid)).standard_normal(shape, dtype=np.float32)
        return out


#: Above this many modalities, ``missing_pattern[*]`` is a seeded sample, not every subset.
EXACT_PATTERN_LIMIT = 6
#: Patterns drawn when there are more modalities (singletons and leave-one-outs always included).
SAMPLED_PATTERNS = 64


def all_patterns(names: Sequence[str]) -> list[str]:
    """Every non-empty subset of modalities (exact up to ``EXACT_PATTERN_LIMIT`` modalities), as
    ``a+b`` strings in a fixed order. Beyond, every singleton, every leave-one-out and a sample keyed on
    the modality names, up to ``SAMPLED_PATTERNS``."""
    names = list(names)
    m = len(names)
    if m <= EXACT_PATTERN_LIMIT:
        return ["+".join(c) for r in range(1, m + 1) for c in itertools.combinations(names, r)]
    chosen = {(n,) for n in names} | {tuple(x for x in names if x != n) for n in names} | {tuple(names)}
    rng = np.random.default_rng(key_to_int("missing_pattern", *names))
    while len(chosen) < SAMPLED_PATTERNS:
        keep = rng.random(m) < 0.5
        if keep.any():
            chosen.add(tuple(n for n, k in zip(names, keep, strict=True) if k))
    return ["+".join(c) for c in sorted(chosen, key=lambda c: (len(c), [names.index(x) for x in c]))]
