"""The protocol library: test conditions (what a trained model is evaluated on) and training
conditions (what a method trains on), each a named, versioned, pure function of (split, parameters,
seed). See ``base`` for the condition syntax and the keying of randomness."""

from __future__ import annotations

from collections.abc import Iterable

from benchmark.contracts import DatasetInfo, Split
from benchmark.protocols.base import Condition, Param, Protocol, ProtocolError, all_patterns
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


def expand_conditions(keys: Iterable[str], info: DatasetInfo, stage: str = "test") -> list[Condition]:
    """Parse, expand ``*`` and validate condition keys against a dataset; duplicates are dropped.
    Raises ProtocolError (naming protocol, parameter and allowed values) before anything trains."""
    out: dict[str, Condition] = {}
    for key in keys:
        cond = Condition.parse(key)
        proto = get_protocol(cond.protocol, stage)
        for args in proto.expand(cond.args, info):
            c = Condition(cond.protocol, proto.canonical(proto.validate(args, info)))
            out.setdefault(c.key, c)
    return list(out.values())


def apply_condition(split: Split, condition: Condition, seed: int, stage: str = "test") -> Split:
    proto = get_protocol(condition.protocol, stage)
    return proto.apply(split, proto.full_args(condition.args), seed)


def condition_versions(conditions: list[Condition], stage: str) -> list[str]:
    """``key@version`` per condition, for the run_id."""
    return [f"{c.key}@{get_protocol(c.protocol, stage).version}" for c in conditions]


__all__ = ["PROTOCOLS", "Condition", "Param", "Protocol", "ProtocolError", "all_patterns", "apply_condition",
           "condition_versions", "expand_conditions", "get_protocol"]
