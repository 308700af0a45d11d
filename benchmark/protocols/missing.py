"""Missing-modality protocols: at random, in every pattern, and not at random."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol

RATE_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MNAR_GRID = (0.1, 0.2, 0.3, 0.4, 0.5)


def keep_at_least(mask: np.ndarray, before: np.ndarray, u: np.ndarray, min_present: int) -> np.ndarray:
    """Restore dropped modalities, those with the largest draws first, until each sample has
    ``min_present`` (or all it had)."""
    mask = mask.copy()
    need = np.minimum(min_present, before.sum(axis=1)) - mask.sum(axis=1)
    for i in np.flatnonzero(need > 0):
        dropped = np.flatnonzero(before[i] & ~mask[i])
        restore = dropped[np.argsort(-u[i, dropped], kind="stable")[: need[i]]]
        mask[i, restore] = True
    return mask


def _with_mask(split: Split, mask: np.ndarray) -> Split:
    return split.with_inputs(split.x, torch.from_numpy(mask).to(split.mask.device))


class RandomMissing(Protocol):
    """Each modality of each sample goes missing with probability `rate`, independently."""

    name, version, family = "random_missing", 2, "missing"
    params = (Param("rate", "rate", RATE_GRID),
              Param("min_present", "count", default=1.0, doc="modalities always kept per sample"))
    severity_param = "rate"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        rate, min_present = float(args[0]), int(args[1])
        u = np.stack([self.uniforms(split, args, seed, m) for m in split.modality_names], axis=1)
        before = split.mask.cpu().numpy()
        mask = keep_at_least(before & (u >= rate), before, u, min_present)
        return _with_mask(split, mask)


class MissingModality(Protocol):
    """One named modality removed from every sample (leave-one-out)."""

    name, version, family = "missing_modality", 1, "missing"
    params = (Param("modality", "modality"),)

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        mask = split.mask.cpu().numpy().copy()
        mask[:, split.modality_names.index(str(args[0]))] = False
        return _with_mask(split, mask)


class MissingPattern(Protocol):
    """Only the named modalities present (``a+b``); ``*`` gives every non-empty subset."""

    name, version, family = "missing_pattern", 1, "pattern"
    params = (Param("present", "pattern"),)

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        present = set(str(args[0]).split("+"))
        keep = np.array([n in present for n in split.modality_names])
        return _with_mask(split, split.mask.cpu().numpy() & keep[None, :])


class MNARValue(Protocol):
    """A modality goes missing more often the larger its own values: a sample's probability is
    2 * rate * q, q its quantile (0..1) of the modality's mean value in the split, so the mean rate is
    `rate`. Not a per-sample draw alone: q ranks the sample within the split."""

    name, version, family = "mnar_value", 1, "mnar"
    params = (Param("modality", "modality"), Param("rate", "rate", MNAR_GRID, bounds=(0.0, 0.5)))
    severity_param = "rate"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        j = split.modality_names.index(str(args[0]))
        score = split.x[str(args[0])].reshape(len(split), -1).double().mean(dim=1).cpu().numpy()
        quantile = (np.argsort(np.argsort(score, kind="stable"), kind="stable") + 0.5) / len(split)
        drop = self.uniforms(split, args, seed) < 2 * float(args[1]) * quantile
        return _drop_one(split, j, drop)


class MNARClass(Protocol):
    """A modality goes missing depending on the class: class c (of K) with probability
    2 * rate * (c + 0.5) / K, so the mean rate over balanced classes is `rate`."""

    name, version, family = "mnar_class", 1, "mnar"
    params = (Param("modality", "modality"), Param("rate", "rate", MNAR_GRID, bounds=(0.0, 0.5)))
    severity_param = "rate"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        j = split.modality_names.index(str(args[0]))
        y = split.y.cpu().numpy()
        k = max(int(y.max()) + 1, 1)
        drop = self.uniforms(split, args, seed) < 2 * float(args[1]) * (y + 0.5) / k
        return _drop_one(split, j, drop)


def _drop_one(split: Split, j: int, drop: np.ndarray) -> Split:
    """Drop modality j where ``drop``, except from samples for which it is the last one present."""
    mask = split.mask.cpu().numpy().copy()
    last = mask.sum(axis=1) == 1
    mask[:, j] &= ~(drop & ~last)
    return _with_mask(split, mask)
