"""Hyperparameters: one declaration per field holds everything about it (as DomainBed draws them).

A method declares each hyperparameter once, in its frozen Hparams dataclass::

    tau: float = hparam(0.1, LogUniform(0.05, 0.5), doc="temperature of the contrastive loss",
                        source="INF", allowed=Range(0, None, low_open=True))

The default is the paper's setting, ``space`` is what search draws from, ``doc`` and ``source`` (a key of
:data:`SOURCES`) document it, and ``allowed`` (with the field's type annotation) is what :func:`validate`
accepts. Docs (:func:`describe`), validation and search all read this declaration, so they cannot drift apart.

Draw 0 is the defaults; draw k >= 1 samples every hyperparameter that has a space from a generator keyed
on (method, hyperparameter name, k), so adding a hyperparameter leaves every other draw unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.seeding import keyed_rng

#: Where a hyperparameter's default comes from (the tags of shared/specs/*.md).
SOURCES = {
    "SRC": "stated by the paper or its authors' code",
    "INF": "reconstructed where the sources are silent (the spec's default)",
    "SRC/INF": "partly stated, partly reconstructed (the doc says which part)",
    "suite": "a choice of this benchmark, not of a paper (baselines)",
}


# ------------------------------------------------------------------------------------------ search spaces
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


# ------------------------------------------------------------------------------------------ allowed values
class Allowed:
    """A set of allowed values, beyond the field's type."""

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Allowed):
    """Finite numbers between ``low`` and ``high`` (None: unbounded), closed unless ``*_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        kind = "integer " if self.integer else ""
        if self.low is None and self.high is None:
            return f"any finite {kind or 'number '}".rstrip()
        if self.high is None:
            return f"{kind}{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{kind}{'<' if self.high_open else '<='} {self.high:g}"
        return f"{kind}{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class OneOf(Allowed):
    options: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        is_bool = isinstance(value, bool | np.bool_)
        return any(value == o and is_bool == isinstance(o, bool | np.bool_) for o in self.options)

    def describe(self) -> str:
        return f"one of {list(self.options)}"


@dataclass(frozen=True)
class Each(Allowed):
    """Every element of a sequence (every value of a mapping) is allowed by ``inner``."""

    inner: Allowed

    def contains(self, value: Any) -> bool:
        items = value.values() if isinstance(value, Mapping) else value
        return all(self.inner.contains(v) for v in items)

    def describe(self) -> str:
        return f"each {self.inner.describe()}"


@dataclass(frozen=True)
class Predicate(Allowed):
    test: Callable[[Any], bool]
    text: str

    def contains(self, value: Any) -> bool:
        return bool(self.test(value))

    def describe(self) -> str:
        return self.text


def as_allowed(spec: Any) -> Allowed | None:
    """``allowed=`` as given to :func:`hparam`: an Allowed, a Space (its support), a tuple of options or a
    predicate."""
    if spec is None or isinstance(spec, Allowed):
        return spec
    if isinstance(spec, Choice):
        return OneOf(tuple(spec.options))
    if isinstance(spec, IntUniform):
        return Range(spec.low, spec.high, integer=True)
    if isinstance(spec, LogUniform | Uniform):
        return Range(spec.low, spec.high)
    if isinstance(spec, tuple | list | set | frozenset):
        return OneOf(tuple(spec))
    if callable(spec):
        return Predicate(spec, (spec.__doc__ or getattr(spec, "__name__", "a valid value")).strip())
    raise TypeError(f"allowed must be an Allowed, a Space, a tuple of options or a predicate, got {spec!r}")


# ------------------------------------------------------------------------------------------ declaration
def hparam(default: Any, space: Space | None = None, doc: str = "", source: str = "", allowed: Any = None) -> Any:
    """A dataclass field: its default, the space search draws from, its doc, its source tag (a key of
    :data:`SOURCES`) and the values :func:`validate` accepts (besides the type annotation)."""
    if source and source not in SOURCES:
        raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    return dataclasses.field(default=default, metadata={"space": space, "doc": doc, "source": source,
                                                        "allowed": as_allowed(allowed)})


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


# ------------------------------------------------------------------------------------------ types
def _types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass; {} when they cannot be resolved (then types go unchecked)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - a plug-in's unresolvable annotation only skips the type check
        return {}


def type_ok(value: Any, tp: Any) -> bool:
    """Whether ``value`` has type ``tp`` (bool, int, float, str, None, unions, tuple[X, ...], Mapping[K, V])."""
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, a) for a in args)
    if tp is bool:
        return isinstance(value, bool | np.bool_)
    if tp is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if tp is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(type_ok(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(type_ok(v, a) for v, a in zip(value, args, strict=True)))
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return isinstance(value, Mapping) and (not args or all(type_ok(k, args[0]) and type_ok(v, args[1])
                                                               for k, v in value.items()))
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


# ------------------------------------------------------------------------------------------ validation
def validate(cls: type, values: Any = None, method: str = "") -> Any:
    """An instance of the Hparams dataclass ``cls`` whose every field has its declared type and an allowed
    value. ``values``: an instance of ``cls`` (checked and returned) or a mapping of overrides of the
    defaults (unknown names are refused). Raises ValueError naming the method, the hyperparameter, the bad
    value and what is allowed."""
    who = f"{method}: " if method else ""
    if not dataclasses.is_dataclass(cls):
        if values is not None and not isinstance(values, Mapping):
            return values
        if values:
            raise ValueError(f"{who}unknown hyperparameter(s) {sorted(values)}; this method has none")
        return cls()
    if isinstance(values, cls):
        instance = values
    else:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{who}unknown hyperparameter(s) {unknown}; this method has {sorted(known)}")
        instance = cls(**values)
    hints = _types(cls)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        tp = hints.get(f.name)
        allowed = f.metadata.get("allowed")
        if tp is not None and not type_ok(value, tp):
            raise ValueError(f"{who}hyperparameter {f.name!r} = {value!r} has type {type(value).__name__}; "
                             f"allowed: {allowed_text(tp, allowed)}")
        if allowed is not None and value is not None and not allowed.contains(value):
            raise ValueError(f"{who}hyperparameter {f.name!r} = {value!r} is not allowed; "
                             f"allowed: {allowed_text(tp, allowed)}")
    return instance


def allowed_text(tp: Any, allowed: Allowed | None) -> str:
    """The type and the allowed values, as one phrase ("float, [0, 1)")."""
    parts = [type_name(tp)] if tp is not None else []
    if allowed is not None:
        parts.append(allowed.describe())
    return ", ".join(parts) or "anything"


# ------------------------------------------------------------------------------------------ documentation
def describe(cls: type) -> list[str]:
    """One line per hyperparameter, for ``python -m benchmark list methods``:
    ``  name = default  [SRC]  space: ...  allowed: ...  - doc``."""
    if not dataclasses.is_dataclass(cls):
        return []
    hints = _types(cls)
    lines = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        parts = [f"  {f.name} = {f.default!r}"]
        if meta.get("source"):
            parts.append(f"[{meta['source']}]")
        if meta.get("space") is not None:
            parts.append(f"space: {meta['space'].describe()}")
        parts.append(f"allowed: {allowed_text(hints.get(f.name), meta.get('allowed'))}")
        line = "  ".join(parts)
        lines.append(f"{line}  — {meta['doc']}" if meta.get("doc") else line)
    return lines
