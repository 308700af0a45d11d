"""Reductions of many small groups at once, each bit for bit what numpy gives on the group alone.

A rebuild reduces thousands of small groups (the seeds of a method on a dataset, the points of a
robustness curve): one numpy call per group costs microseconds of overhead each, thousands of times.
``Grouped`` stacks the groups of equal length into one matrix and reduces along its rows. numpy reduces
each contiguous row of a matrix with the same pairwise summation it applies to a 1-d array of that
length, so every mean, sum and standard deviation is the one the group alone would give (the tests
check this against per-group numpy calls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd


class Grouped:
    """Elements assigned to groups ``0 .. n_groups - 1`` by ``codes``; within a group the elements keep
    the order they have in the arrays passed in."""

    def __init__(self, codes: np.ndarray, n_groups: int | None = None) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        self.n_groups = int(n_groups if n_groups is not None else (codes.max() + 1 if len(codes) else 0))
        self.order = np.argsort(codes, kind="stable")
        self.sizes = np.bincount(codes, minlength=self.n_groups)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def matrices(self, values: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """For each group length n > 0: the groups of that length and their values as a (groups x n)
        C-contiguous matrix, a group per row in element order."""
        ordered = np.asarray(values)[self.order]
        for n in np.unique(self.sizes):
            if n == 0:
                continue
            groups = np.flatnonzero(self.sizes == n)
            yield groups, ordered[self.starts[groups][:, None] + np.arange(n)]

    def reduce(self, values: np.ndarray, fn: Callable[[np.ndarray], np.ndarray],
               empty: float = np.nan) -> np.ndarray:
        """``fn`` (a row-wise reduction of a matrix, e.g. ``lambda m: m.mean(axis=1)``) of every group;
        ``empty`` for a group without elements."""
        out = np.full(self.n_groups, empty, dtype=float)
        for groups, matrix in self.matrices(values):
            out[groups] = fn(matrix)
        return out

    def mean(self, values: np.ndarray) -> np.ndarray:
        """``np.mean`` of each group (NaN for an empty group)."""
        return self.reduce(values, lambda m: m.mean(axis=1))



def sorted_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column's values as strings (as ``astype(str)`` writes them), given as integer codes numbered in
    sorted order (so sorting or grouping by the codes is sorting or grouping by the strings) and the
    strings themselves (``labels[codes]``). A categorical column costs no string per row."""
    if isinstance(column.dtype, pd.CategoricalDtype) and (column.cat.codes.to_numpy() >= 0).all():
        cats = np.asarray(column.cat.categories.astype(str), dtype=object)
        order = np.argsort(cats, kind="stable")
        rank = np.empty(len(cats), dtype=np.int64)
        rank[order] = np.arange(len(cats))
        return rank[column.cat.codes.to_numpy()], cats[order]
    codes, labels = pd.factorize(column.astype(str).to_numpy(dtype=object), sort=True)
    return codes.astype(np.int64), np.asarray(labels, dtype=object)
