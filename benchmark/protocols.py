"""Protocols: named, versioned, pure functions of (split, severity, seed).

A *test* protocol changes what a trained model is evaluated on; a *training* protocol changes what a
method trains on. Every draw is keyed on (protocol, version, severity, seed, sample id), so two methods
evaluated under the same condition see byte-identical inputs, and a sample's corruption does not depend
on the other samples in the split. Bump a protocol's ``version`` whenever its output changes: the
version is part of every run_id.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.seeding import keyed_uniforms


@dataclass(frozen=True)
class Condition:
    """A protocol at one severity, e.g. ``random_missing[0.3]``; ``clean`` has no severity."""

    protocol: str
    severity: str | float | None = None

    @property
    def key(self) -> str:
        return self.protocol if self.severity is None else f"{self.protocol}[{self.severity}]"

    @classmethod
    def parse(cls, key: str) -> Condition:
        if "[" not in key:
            return cls(key)
        name, rest = key.split("[", 1)
        if not rest.endswith("]"):
            raise ValueError(f"condition {key!r} should look like name[severity]")
        raw = rest[:-1]
        try:
            return cls(name, float(raw))
        except ValueError:
            return cls(name, raw)


class Protocol(ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    family: ClassVar[str]
    stage: ClassVar[str]  # "test" or "train"

    @abstractmethod
    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split: ...

    def uniforms(self, split: Split, severity: object, seed: int, *extra: object) -> np.ndarray:
        return keyed_uniforms(split.ids, self.name, self.version, severity, seed, *extra)


class Clean(Protocol):
    """The split as it is."""

    name, version, family, stage = "clean", 1, "clean", "test"

    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split:
        return split


class MissingModality(Protocol):
    """One named modality removed from every sample (severity = the modality's name)."""

    name, version, family, stage = "missing_modality", 1, "missing", "test"

    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split:
        names = split.modality_names
        if severity not in names:
            raise ValueError(f"missing_modality needs a modality name, one of {names}; got {severity!r}")
        mask = split.mask.clone()
        mask[:, names.index(str(severity))] = False
        return split.with_inputs(split.x, mask)


class RandomMissing(Protocol):
    """Each modality of each sample missing with probability ``severity``, independently.

    ``min_present`` modalities are always kept: where a draw removes too many, the modalities with the
    largest draws (the least likely to go missing) are kept, so the rule is still a function of the key.
    """

    name, version, family, stage = "random_missing", 1, "missing", "test"
    min_present: ClassVar[int] = 1

    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split:
        rate = float(severity)  # type: ignore[arg-type]
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"random_missing rate must lie in [0, 1], got {rate}")
        u = np.stack([self.uniforms(split, rate, seed, m) for m in split.modality_names], axis=1)
        drop = u < rate
        keep_first = np.argsort(-u, axis=1, kind="stable")[:, : self.min_present]
        rows = np.arange(len(split))[:, None]
        drop[rows, keep_first] = False
        mask = split.mask & torch.from_numpy(~drop).to(split.mask.device)
        return split.with_inputs(split.x, mask)


class LabelScarcity(Protocol):
    """Training condition: only a stratified ``severity`` share of training labels is kept; the other
    labels are removed from the split (y = -1), not merely flagged."""

    name, version, family, stage = "labels", 1, "labels", "train"

    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split:
        frac = float(severity)  # type: ignore[arg-type]
        if not 0.0 < frac <= 1.0:
            raise ValueError(f"labels fraction must lie in (0, 1], got {frac}")
        u = self.uniforms(split, frac, seed)
        y = split.y.cpu().numpy()
        keep = np.zeros(len(y), dtype=bool)
        for c in np.unique(y[y >= 0]):
            members = np.flatnonzero(y == c)
            k = max(1, int(round(frac * len(members))))
            keep[members[np.argsort(u[members], kind="stable")[:k]]] = True
        keep_t = torch.from_numpy(keep).to(split.y.device)
        return dataclasses.replace(
            split, y=torch.where(keep_t, split.y, torch.full_like(split.y, -1)), labeled=split.labeled & keep_t
        )


class Standard(Protocol):
    """Training condition: every label and every modality."""

    name, version, family, stage = "standard", 1, "standard", "train"

    def apply(self, split: Split, severity: str | float | None, seed: int) -> Split:
        return split


PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (Clean(), MissingModality(), RandomMissing(), LabelScarcity(), Standard())
}


def get_protocol(name: str, stage: str) -> Protocol:
    proto = PROTOCOLS.get(name)
    if proto is None or proto.stage != stage:
        known = sorted(k for k, v in PROTOCOLS.items() if v.stage == stage)
        raise KeyError(f"no {stage} protocol named {name!r}; known: {', '.join(known)}")
    return proto


def apply_condition(split: Split, condition: Condition, seed: int, stage: str = "test") -> Split:
    return get_protocol(condition.protocol, stage).apply(split, condition.severity, seed)


def condition_versions(conditions: list[Condition], stage: str) -> list[str]:
    """``name@version[severity]`` per condition, for the run_id."""
    return [f"{c.key}@{get_protocol(c.protocol, stage).version}" for c in conditions]
