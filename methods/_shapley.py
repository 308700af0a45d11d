"""Pointwise modality Shapley values and the Shapley-based selection rule (conformal_shapley; Chandy et al.).

Coalitions are bit masks: bit j set <=> modality j in S; coalition 0 is the empty set. Pure numpy functions,
unit-tested in tests/test_conformal_shapley.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def bits_to_members(bits: int, n_modalities: int) -> tuple[int, ...]:
    return tuple(j for j in range(n_modalities) if bits >> j & 1)


def members_to_bits(members: Sequence[int]) -> int:
    return sum(1 << int(j) for j in set(members))


def shapley_weight_matrix(n_modalities: int) -> np.ndarray:
    """``W`` of shape (2^M, M) with ``phi = V @ W`` for a value table ``V`` of shape (n, 2^M) (column =
    coalition bits): ``W[S|j, j] += w(|S|)``, ``W[S, j] -= w(|S|)`` for S not containing j, with the Shapley
    weight w(s) = s!(M-s-1)!/M!."""
    m = n_modalities
    w = np.zeros((1 << m, m))
    for s_bits in range(1 << m):
        size = bin(s_bits).count("1")
        for j in range(m):
            if s_bits >> j & 1:
                continue
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            w[s_bits | (1 << j), j] += weight
            w[s_bits, j] -= weight
    return w


def exact_shapley(values: np.ndarray) -> np.ndarray:
    """Pointwise Shapley values from a full value table ``values`` (n, 2^M) whose column 0 is val(empty)."""
    m = int(round(math.log2(values.shape[-1])))
    if 1 << m != values.shape[-1]:
        raise ValueError(f"a value table needs 2^M columns, got {values.shape[-1]}")
    return values @ shapley_weight_matrix(m)


def permutation_coalitions(perms: np.ndarray) -> list[int]:
    """The non-empty coalitions (prefixes of every permutation) that permutation sampling evaluates."""
    out = set()
    for perm in perms:
        bits = 0
        for j in perm:
            bits |= 1 << int(j)
            out.add(bits)
    return sorted(out)


def permutation_shapley(value_of: Mapping[int, np.ndarray], perms: np.ndarray, n: int) -> np.ndarray:
    """Castro et al.'s permutation estimator, the same permutations for every point: phi_j is the mean over
    permutations of val(prefix + j) - val(prefix). ``value_of[bits]`` is the (n,) value of a coalition;
    val(empty) = 0. Each permutation telescopes, so efficiency (sum_j phi_j = val(all)) holds exactly."""
    m = perms.shape[1]
    phi = np.zeros((n, m))
    for perm in perms:
        bits, prev = 0, np.zeros(n)
        for j in perm:
            bits |= 1 << int(j)
            cur = value_of[bits]
            phi[:, int(j)] += cur - prev
            prev = cur
    return phi / len(perms)


def select_modalities(scores: np.ndarray, available: np.ndarray, q: int) -> np.ndarray:
    """The selection rule: among the available modalities with a positive score, the top min(q, #positive)
    by score (ties: lower modality index first). Returns the selected coalition's bits per sample."""
    scores = np.asarray(scores, dtype=np.float64)
    eligible = np.asarray(available, dtype=bool) & (scores > 0)
    n, m = scores.shape
    if q <= 0:
        return np.zeros(n, dtype=np.int64)
    masked = np.where(eligible, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, : min(q, m)]
    keep = np.take_along_axis(eligible, order, axis=1)
    return ((keep.astype(np.int64) << order).sum(axis=1)).astype(np.int64)
