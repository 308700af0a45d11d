"""Noise per modality at five graded severities: Gaussian noise scaled to each feature's spread, and
for images Gaussian blur and occlusion."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol

LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
#: Noise standard deviation per level, in units of each feature's spread in the split.
NOISE_SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.0)
#: Blur standard deviation per level, in pixels.
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
#: Side of the occluding square per level, as a share of the image's smaller side.
OCCLUSION_SIDES = (0.1, 0.2, 0.3, 0.4, 0.5)


def feature_spread(v: np.ndarray) -> np.ndarray:
    """Per-feature standard deviation for tabular data (n, d), one image-wide value for images and
    sequences (more than one axis per sample)."""
    flat = v.reshape(len(v), -1)
    spread = flat.std(axis=0) if v.ndim == 2 else np.full(flat.shape[1], flat.std())
    return np.where(spread > 0, spread, 1.0).reshape(v.shape[1:]).astype(np.float32)


def replace_modality(split: Split, name: str, values: np.ndarray) -> Split:
    x = dict(split.x)
    x[name] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(split.x[name].device)
    return split.with_inputs(x, split.mask)


class ModalityLevelProtocol(Protocol):
    """A corruption of one modality at a level 1..5 (parameters ``modality``, ``level``)."""

    params: tuple[Param, ...] = (Param("modality", "modality"), Param("level", "level", LEVELS))
    severity_param = "level"

    @staticmethod
    def target(split: Split, args: tuple[Arg, ...]) -> tuple[str, np.ndarray, int]:
        """The modality's name, its values as an array, and the level as an index 0..4."""
        return str(args[0]), split.x[str(args[0])].cpu().numpy(), int(args[1]) - 1


class GaussianNoise(ModalityLevelProtocol):
    """Additive Gaussian noise on one modality, sigma = (0.1, 0.25, 0.5, 1, 2)[level-1] x spread."""

    name, version, family = "gaussian_noise", 1, "noise"

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, v, level = self.target(split, args)
        noise = self.normals(split, v.shape[1:], args, seed)
        return replace_modality(split, name, v + NOISE_SIGMAS[level] * feature_spread(v) * noise)


class ImageBlur(ModalityLevelProtocol):
    """Gaussian blur of an image modality, sigma = (0.5, 1, 1.5, 2, 3)[level-1] pixels."""

    name, version, family = "image_blur", 1, "noise"
    params = (Param("modality", "modality", kinds=("image",)), Param("level", "level", LEVELS))

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, v, level = self.target(split, args)
        sigma = [0.0] * (v.ndim - 2) + [BLUR_SIGMAS[level]] * 2
        return replace_modality(split, name, gaussian_filter(v, sigma=sigma, mode="nearest"))


class ImageOcclusion(ModalityLevelProtocol):
    """A square of side (0.1 .. 0.5)[level-1] x the image's smaller side set to 0 (the training
    mean after standardisation), at a position drawn per sample."""

    name, version, family = "image_occlusion", 1, "noise"
    params = (Param("modality", "modality", kinds=("image",)), Param("level", "level", LEVELS))

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, v, level = self.target(split, args)
        v = v.copy()
        h, w = v.shape[-2:]
        side = max(1, int(round(OCCLUSION_SIDES[level] * min(h, w))))
        top = (self.uniforms(split, args, seed, "top") * (h - side + 1)).astype(int)
        left = (self.uniforms(split, args, seed, "left") * (w - side + 1)).astype(int)
        for i in range(len(v)):
            v[i, ..., top[i] : top[i] + side, left[i] : left[i] + side] = 0.0
        return replace_modality(split, name, v)
