"""Hyperparameter declarations are the one source of truth: every registered method documents, tags and
bounds every field in its ``hparam(...)``, and one validator enforces what they declare."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from helpers import toy_info

from benchmark import registry
from benchmark.contracts import NoHparams, hparams_from_dict
from benchmark.hparams import (
    SOURCES,
    Choice,
    Each,
    IntUniform,
    LogUniform,
    OneOf,
    Range,
    Uniform,
    as_allowed,
    describe,
    draw,
    hparam,
    validate,
)

METHODS = sorted(registry.methods())


def hparams_of(name: str) -> type:
    return registry.get("method", name).cls.Hparams


def fields(name: str) -> list[dataclasses.Field]:
    return list(dataclasses.fields(hparams_of(name)))


def test_the_registry_has_the_methods_this_file_checks() -> None:
    assert {"early_fusion", "late_fusion", "robult", "mm_dro", "ef_dro", "gmm_adaptive",
            "conformal_shapley"} <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_every_field_has_a_doc_and_a_source_tag(name: str) -> None:
    assert fields(name), f"{name} declares no hyperparameters"
    for f in fields(name):
        assert f.metadata.get("doc", "").strip(), f"{name}.{f.name} has no doc"
        assert f.metadata.get("source") in SOURCES, f"{name}.{f.name} has source {f.metadata.get('source')!r}"


@pytest.mark.parametrize("name", METHODS)
def test_defaults_and_every_draw_pass_validation(name: str) -> None:
    cls = hparams_of(name)
    assert validate(cls, {}, name) == cls()
    for k in range(1, 6):
        values = draw(cls, name, k)
        assert validate(cls, values, name) == cls(**values)


@pytest.mark.parametrize("name", METHODS)
def test_every_option_of_a_search_space_is_allowed(name: str) -> None:
    cls = hparams_of(name)
    for f in fields(name):
        space = f.metadata.get("space")
        options = (space.options if isinstance(space, Choice)
                   else (space.low, space.high) if space is not None else ())
        for value in options:
            validate(cls, {f.name: value}, name)


def bad_values(f: dataclasses.Field, default: object) -> list[object]:
    """Values a field must refuse: a wrong type, and (where declared) values outside its range or options."""
    allowed = f.metadata.get("allowed")
    out: list[object] = [["not", "a", "scalar"]] if isinstance(default, tuple | Mapping) else [object()]
    out.append("not-a-number" if isinstance(default, bool | int | float) or default is None else 12345)
    if isinstance(allowed, Range):
        if allowed.low is not None:
            out.append(allowed.low if allowed.low_open else allowed.low - 1)
        if allowed.high is not None:
            out.append(allowed.high if allowed.high_open else allowed.high + 1)
        out.append(math.nan)
    if isinstance(allowed, OneOf):
        out.append("not-an-option")
    if isinstance(allowed, Each):
        out.append((-1.0,) if isinstance(default, tuple) else {"m": -1.0})
    return out


@pytest.mark.parametrize("name", METHODS)
def test_a_wrong_value_is_refused_naming_the_method_the_field_and_what_is_allowed(name: str) -> None:
    cls = hparams_of(name)
    method = registry.get("method", name).cls
    defaults = cls()
    for f in fields(name):
        for bad in bad_values(f, getattr(defaults, f.name)):
            with pytest.raises(ValueError, match=rf"{name}: hyperparameter '{f.name}' = .*; allowed: ") as err:
                validate(cls, {f.name: bad}, name)
            assert repr(bad) in str(err.value)
        # the method's constructor and the suite path refuse the same values
        bad = bad_values(f, getattr(defaults, f.name))[-1]
        with pytest.raises(ValueError, match=f"'{f.name}'"):
            method(toy_info(), cls(**{f.name: bad}))
        with pytest.raises(ValueError, match=f"'{f.name}'"):
            hparams_from_dict(cls, {f.name: bad}, name)


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"robult: unknown hyperparameter\(s\) \['taau'\]; this method has"):
        validate(hparams_of("robult"), {"taau": 0.1}, "robult")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        validate(NoHparams, {"x": 1})
    assert validate(NoHparams, None) == NoHparams()


def test_types_follow_the_annotations() -> None:
    @dataclass(frozen=True)
    class H:
        n: int = hparam(3, doc="n", source="INF", allowed=Range(1, None))
        x: float = hparam(0.5, doc="x", source="INF")
        q: int | None = hparam(None, doc="q", source="INF", allowed=Range(0, None))
        flag: bool = hparam(True, doc="flag", source="INF")
        grid: tuple[float, ...] = hparam((1.0, 2.0), doc="grid", source="INF")

    assert validate(H, {"x": 1, "q": 2, "grid": (1, 2.5)}).x == 1  # an int is a float; values are not converted
    for bad in ({"n": 2.0}, {"n": True}, {"x": True}, {"q": "2"}, {"flag": 1}, {"grid": [1.0]}, {"grid": ("a",)}):
        with pytest.raises(ValueError, match=f"'{next(iter(bad))}'.*has type"):
            validate(H, bad, "h")
    with pytest.raises(ValueError, match=r"'n' = 0 is not allowed; allowed: int, >= 1"):
        validate(H, {"n": 0}, "h")


def test_allowed_sets() -> None:
    unit = Range(0, 1, low_open=True, high_open=True)
    assert unit.contains(0.5) and not unit.contains(0.0) and not unit.contains(1.0) and not unit.contains(math.nan)
    assert not Range(0, None).contains(True) and not Range(0, None).contains(math.inf)
    assert Range(1, 3, integer=True).contains(2) and not Range(1, 3, integer=True).contains(2.5)
    assert unit.describe() == "(0, 1)" and Range(0, None).describe() == ">= 0" and Range(None, 2).describe() == "<= 2"
    assert OneOf((True, False)).contains(False) and not OneOf((0, 1)).contains(True)
    assert Each(Range(0, None)).contains({"a": 1.0}) and not Each(Range(0, None)).contains((1.0, -1.0))
    assert as_allowed(("a", "b")) == OneOf(("a", "b")) and as_allowed(Choice((1, 2))) == OneOf((1, 2))
    assert as_allowed(IntUniform(1, 4)) == Range(1, 4, integer=True)
    assert as_allowed(LogUniform(0.1, 1.0)) == Range(0.1, 1.0) == as_allowed(Uniform(0.1, 1.0))
    even = as_allowed(lambda v: v % 2 == 0)
    assert even.contains(4) and not even.contains(3)
    with pytest.raises(ValueError, match="source must be one of"):
        hparam(1, source="paper")


@pytest.mark.parametrize("name", METHODS)
def test_describe_gives_one_line_per_field_with_default_source_space_and_doc(name: str) -> None:
    lines = describe(hparams_of(name))
    assert len(lines) == len(fields(name))
    for line, f in zip(lines, fields(name), strict=True):
        assert line.startswith(f"  {f.name} = {f.default!r}  [{f.metadata['source']}]")
        assert "allowed: " in line and line.endswith(f.metadata["doc"])
        if f.metadata.get("space") is not None:
            assert f"space: {f.metadata['space'].describe()}" in line


def test_describe_example() -> None:
    @dataclass(frozen=True)
    class H:
        lr: float = hparam(1e-3, LogUniform(1e-4, 1e-2), doc="step size", source="INF", allowed=Range(0, None,
                                                                                                       low_open=True))

    assert describe(H) == ["  lr = 0.001  [INF]  space: log-uniform [0.0001, 0.01]  allowed: float, > 0  — step size"]
