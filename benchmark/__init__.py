"""Reproducible benchmark suite for robust multimodal learning.

The engine: contracts, plug-in registry, protocols, runner, timing, metrics and leaderboard.
Methods live in ``methods/`` and dataset loaders in ``datasets/``; both are discovered by file.
"""

import os

# cuBLAS needs this before CUDA initialises for torch.use_deterministic_algorithms(True) to hold.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

#: Part of every run_id: bump it when a change to the engine changes what a run computes.
ENGINE_VERSION = "0.1.0"
