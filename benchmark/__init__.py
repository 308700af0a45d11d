"""Reproducible benchmark suite for robust multimodal learning.

The engine: contracts, plug-in registry, protocols, runner, timing, metrics and leaderboard.
Methods live in ``methods/`` and dataset loaders in ``datasets/``; both are discovered by file.
"""

import os

# cuBLAS needs this before CUDA initialises for torch.use_deterministic_algorithms(True) to hold.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from benchmark.version import ENGINE_VERSION

__all__ = ["ENGINE_VERSION", "load_results"]


def load_results(suite_or_folder):  # noqa: ANN001, ANN201 - documented in benchmark.results
    """The tidy results table (a pandas DataFrame) of a suite or a results folder; see
    ``benchmark.results.load_results``. Imported on first use, so ``import benchmark`` stays light."""
    from benchmark.results import load_results as load

    return load(suite_or_folder)
