"""Keyed randomness: every random draw is a pure function of a key, never of global state.

Protocols key their draws on (protocol, version, severity, seed, sample id), so every method sees
byte-identical inputs and a sample's corruption does not depend on which other samples are in the split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import torch


def key_to_int(*parts: object) -> int:
    """A 64-bit integer from a key; stable across processes and platforms (unlike ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def keyed_rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(key_to_int(*parts))


def keyed_uniforms(ids: Iterable[object], *parts: object) -> np.ndarray:
    """One uniform in [0, 1) per sample id, keyed on ``parts`` and the id alone."""
    return np.array([key_to_int(*parts, i) for i in ids], dtype=np.float64) / 2.0**64


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def set_determinism(threads: int) -> None:
    """Deterministic kernels everywhere; ``threads`` torch threads (1 per worker is fastest on 2 cores)."""
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_num_threads(threads)
