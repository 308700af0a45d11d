"""Training conditions: what a method trains on. Validation stays as it is (labels and modalities)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol
from benchmark.protocols.missing import RATE_GRID, RandomMissing
from benchmark.protocols.noise import GaussianNoise


class Standard(Protocol):
    """Every label and every modality."""

    name, version, family, stage = "standard", 1, "standard", "train"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        return split


class LabelScarcity(Protocol):
    """Only a stratified share of training labels kept; the others are removed (y = -1), and the
    unlabelled samples stay available to methods that use them."""

    name, version, family, stage = "labels", 1, "labels", "train"
    params = (Param("fraction", "rate", (0.05, 0.1, 1.0)),)

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        frac = float(args[0])
        u = self.uniforms(split, args, seed)
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


class TrainMissing(RandomMissing):
    """Modalities missing at random during training, at `rate` (at least one kept per sample)."""

    name, version, family, stage = "train_missing", 1, "missing", "train"
    params = (Param("rate", "rate", RATE_GRID), Param("min_present", "count", default=1.0))


class TrainImbalance(GaussianNoise):
    """Modality imbalance: Gaussian noise on one modality of the training split (as gaussian_noise)."""

    name, version, family, stage = "train_imbalance", 1, "imbalance", "train"
