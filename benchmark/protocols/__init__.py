"""The protocol library: test conditions (what a trained model is evaluated on) and training
conditions (what a method trains on), each a named, versioned, pure function of (split, parameters,
seed). See ``base`` for the condition syntax and the keying of randomness."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from benchmark.contracts import DatasetInfo, Split
from benchmark.protocols.base import Arg, Condition, Param, Protocol, ProtocolError, _fmt, all_patterns
from benchmark.protocols.missing import MissingModality, MissingPattern, MNARClass, MNARValue, RandomMissing
from benchmark.protocols.noise import GaussianNoise, ImageBlur, ImageOcclusion
from benchmark.protocols.shift import CorrelationShift, LabelShift, MeanShift, ScaleShift
from benchmark.protocols.training import LabelScarcity, Standard, TrainImbalance, TrainMissing


class Clean(Protocol):
    """The split as it is."""

    name, version, family = "clean", 1, "clean"

    def apply(self, split: Split, args, seed: int) -> Split:
        return split


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Clean(), RandomMissing(), MissingModality(), MissingPattern(), MNARValue(), MNARClass(),
        GaussianNoise(), ImageBlur(), ImageOcclusion(), MeanShift(), ScaleShift(), CorrelationShift(),
        LabelShift(), Standard(), LabelScarcity(), TrainMissing(), TrainImbalance(),
    )
}


def get_protocol(name: str, stage: str) -> Protocol:
    proto = PROTOCOLS.get(name)
    if proto is None or proto.stage != stage:
        known = sorted(k for k, v in PROTOCOLS.items() if v.stage == stage)
        raise ProtocolError(f"no {stage} protocol named {name!r}; known: {', '.join(known)}")
    return proto


@dataclass(frozen=True)
class ResolvedCondition:
    """A condition parsed, expanded and validated once, when the suite is planned: what the run applies
    and what the record stores, so nothing downstream parses a key again."""

    key: str
    protocol: str
    version: int
    stage: str
    args: tuple[Arg, ...]  # every parameter, defaults filled in
    family: str
    severity: float | None
    curve: str  # the protocol with its parameters other than severity: the curve a severity is a point of

    @classmethod
    def of(cls, condition: Condition, stage: str) -> ResolvedCondition:
        proto = get_protocol(condition.protocol, stage)
        full = proto.full_args(condition.args)
        others = [_fmt(a) for p, a in zip(proto.params, full, strict=True) if p.name != proto.severity_param]
        return cls(condition.key, proto.name, proto.version, stage, full, proto.family, proto.severity(full),
                   f"{proto.name}[{','.join(others)}]")

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "version": self.version, "stage": self.stage, "args": list(self.args),
                "family": self.family, "severity": self.severity, "curve": self.curve}

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> ResolvedCondition:
        return cls(key, d["protocol"], d["version"], d["stage"], tuple(d["args"]), d["family"], d["severity"],
                   d["curve"])

    def apply(self, split: Split, seed: int) -> Split:
        return PROTOCOLS[self.protocol].apply(split, self.args, seed)

    def apply_validation(self, split: Split, seed: int) -> Split:
        """The validation split a run under this training condition selects on (labels scarce alike)."""
        return PROTOCOLS[self.protocol].apply_validation(split, self.args, seed)


def check_syntax(keys: Iterable[str], stage: str) -> None:
    """What can be checked of condition keys before a dataset is known (when a suite loads): the
    syntax, that the protocol exists for ``stage``, and the number of parameters. Raises ProtocolError."""
    for key in keys:
        if not isinstance(key, str):
            raise ProtocolError(f"a condition is a string like 'gaussian_noise[*,*]', got {key!r}")
        cond = Condition.parse(key)
        get_protocol(cond.protocol, stage).full_args(cond.args)


def expand_conditions(keys: Iterable[str], info: DatasetInfo, stage: str = "test") -> list[ResolvedCondition]:
    """Parse, expand ``*`` and validate condition keys against a dataset; duplicates are dropped.
    Raises ProtocolError (naming protocol, parameter and allowed values) before anything trains."""
    out: dict[str, ResolvedCondition] = {}
    for key in keys:
        cond = Condition.parse(key)
        proto = get_protocol(cond.protocol, stage)
        for args in proto.expand(cond.args, info):
            c = Condition(cond.protocol, proto.canonical(proto.validate(args, info)))
            if c.key not in out:
                out[c.key] = ResolvedCondition.of(c, stage)
    return list(out.values())


def apply_condition(split: Split, condition: Condition | ResolvedCondition, seed: int, stage: str = "test") -> Split:
    if isinstance(condition, ResolvedCondition):
        return condition.apply(split, seed)
    proto = get_protocol(condition.protocol, stage)
    return proto.apply(split, proto.full_args(condition.args), seed)


def condition_versions(conditions: list[ResolvedCondition]) -> list[str]:
    """``key@version`` per condition, for the run_id."""
    return [f"{c.key}@{c.version}" for c in conditions]


__all__ = ["PROTOCOLS", "Condition", "Param", "Protocol", "ProtocolError", "ResolvedCondition", "all_patterns",
           "apply_condition", "check_syntax", "condition_versions", "expand_conditions", "get_protocol"]
