"""Distribution shifts: covariate shift in one modality, broken cross-modal pairing, label shift."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol
from benchmark.protocols.noise import ModalityLevelProtocol, feature_spread, replace_modality
from benchmark.seeding import keyed_rng

#: Mean shift per level, in feature spreads per coordinate (the shift vector has norm delta*sqrt(d)).
MEAN_SHIFTS = (0.25, 0.5, 1.0, 1.5, 2.0)
#: Scale factor per level, applied around the split's feature means.
SCALE_FACTORS = (1.25, 1.5, 2.0, 3.0, 4.0)
LABEL_SHIFT_GRID = (0.2, 0.4, 0.6, 0.8)


class MeanShift(ModalityLevelProtocol):
    """Covariate shift: one modality moved along a seeded unit direction by delta * sqrt(d) spreads,
    delta = (0.25, 0.5, 1, 1.5, 2)[level-1] (the DRO paper's mean-shift simulation)."""

    name, version, family = "mean_shift", 1, "covariate"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, v, level = self.target(split, args)
        d = int(np.prod(v.shape[1:]))
        # One direction for the whole split (a shift, not noise): keyed on protocol, modality and seed.
        u = keyed_rng(self.name, self.version, name, seed).standard_normal(d).astype(np.float32)
        u /= np.linalg.norm(u)
        shift = (MEAN_SHIFTS[level] * np.sqrt(d) * u).reshape(v.shape[1:]) * feature_spread(v)
        return replace_modality(split, name, v + shift)


class ScaleShift(ModalityLevelProtocol):
    """Covariate shift: one modality's spread multiplied by (1.25, 1.5, 2, 3, 4)[level-1] around its
    feature means."""

    name, version, family = "scale_shift", 1, "covariate"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, v, level = self.target(split, args)
        mean = v.mean(axis=0, keepdims=True)
        return replace_modality(split, name, mean + SCALE_FACTORS[level] * (v - mean))


class CorrelationShift(Protocol):
    """Cross-modal correlation broken: one modality's values (and presence) are those of another
    sample, from the same class (labels still recoverable) or from any class. The pairing is a
    permutation, so the modality's marginal distribution is unchanged."""

    name, version, family = "correlation_shift", 1, "correlation"
    params = (Param("modality", "modality"), Param("pairing", "choice", ("same_class", "any_class")))

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, pairing = str(args[0]), str(args[1])
        y = split.y.cpu().numpy()
        groups = [np.flatnonzero(y == c) for c in np.unique(y)] if pairing == "same_class" else [np.arange(len(y))]
        u = self.uniforms(split, args, seed)
        source = np.arange(len(y))
        for members in groups:
            order = members[np.argsort(u[members], kind="stable")]
            source[order] = np.roll(order, 1)  # a cyclic shift of a random order: nobody keeps its own
        idx = torch.from_numpy(source).to(split.mask.device)
        j = split.modality_names.index(name)
        x = dict(split.x)
        x[name] = split.x[name][idx]
        mask = split.mask.clone()
        mask[:, j] = split.mask[idx, j]
        return split.with_inputs(x, mask)


class LabelShift(Protocol):
    """Test class priors moved toward one class: target = (1 - lam) * priors + lam * onehot(c), c drawn
    from the seed; the split is resampled within classes (with replacement) to the target counts."""

    name, version, family = "label_shift", 1, "label"
    params = (Param("lam", "rate", LABEL_SHIFT_GRID, bounds=(0.0, 0.95)),)
    severity_param = "lam"

    def target_priors(self, y: np.ndarray, lam: float, seed: int) -> np.ndarray:
        classes = np.unique(y)
        priors = np.array([(y == c).mean() for c in classes])
        favoured = keyed_rng(self.name, self.version, seed).integers(len(classes))
        return (1 - lam) * priors + lam * np.eye(len(classes))[favoured]

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        lam = float(args[0])
        y = split.y.cpu().numpy()
        classes = np.unique(y)
        target = self.target_priors(y, lam, seed)
        counts = _largest_remainder(target * len(y))
        picks = []
        for c, k in zip(classes, counts, strict=True):
            members = np.flatnonzero(y == c)
            rng = keyed_rng(*self.key(args, seed, int(c)))
            picks.append(members[rng.integers(0, len(members), size=k)])
        index = np.concatenate(picks)
        out = split.subset(torch.from_numpy(index))
        return dataclasses.replace(out, ids=np.array([f"{sid}~{i}" for i, sid in enumerate(out.ids)]))


def _largest_remainder(expected: np.ndarray) -> np.ndarray:
    counts = np.floor(expected).astype(int)
    short = int(round(expected.sum())) - counts.sum()
    counts[np.argsort(-(expected - counts), kind="stable")[:short]] += 1
    return counts
