"""Training conditions: what a method trains on, and (``apply_validation``) what its validation split
holds. Validation keeps its inputs clean; only label scarcity changes it, because a practitioner who lacks
training labels lacks validation labels too."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol
from benchmark.protocols.missing import RATE_GRID, RandomMissing
from benchmark.protocols.noise import GaussianNoise


class CleanValidation:
    """Mixin for training conditions that leave validation as it is."""

    def apply_validation(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        """The validation split, unchanged: clean and fully labelled. These conditions describe how the
        training data were collected (missing or noisy inputs), and validation stands in for the clean test
        data that model selection aims at; the runner scores validation under the condition separately."""
        return split


class Standard(CleanValidation, Protocol):
    """Every label and every modality."""

    name, version, family, stage = "standard", 1, "standard", "train"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        return split


class LabelScarcity(Protocol):
    """Only a stratified share of training labels kept; the others are removed (y = -1), and the
    unlabelled samples stay available to methods that use them. Validation keeps the same share of its
    labels (drawn apart from training's), so model selection cannot lean on labels training lacks."""

    # version 2: validation labels are removed too (apply_validation).
    name, version, family, stage = "labels", 2, "labels", "train"
    params = (Param("fraction", "rate", (0.05, 0.1, 1.0)),)

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        return self._keep_share(split, float(args[0]), self.uniforms(split, args, seed))

    def apply_validation(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        """The same share of validation labels kept per class, keyed apart from training ("val")."""
        return self._keep_share(split, float(args[0]), self.uniforms(split, args, seed, "val"))

    @staticmethod
    def _keep_share(split: Split, frac: float, u: np.ndarray) -> Split:
        """Keep, per class, the ``frac`` share (at least one) of labels with the smallest keyed uniforms."""
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


class TrainMissing(CleanValidation, RandomMissing):
    """Modalities missing at random during training, at `rate` (at least one kept per sample)."""

    name, version, family, stage = "train_missing", 1, "missing", "train"
    params = (Param("rate", "rate", RATE_GRID), Param("min_present", "count", default=1.0))


class TrainImbalance(CleanValidation, GaussianNoise):
    """Modality imbalance: Gaussian noise on one modality of the training split (as gaussian_noise)."""

    name, version, family, stage = "train_imbalance", 1, "imbalance", "train"
