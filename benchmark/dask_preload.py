"""Imported once by the forkserver (``dask_backend.PRELOAD`` for Dask workers, ``SERIAL_PRELOAD`` for the
runs of a serial sweep): the run task, every plug-in and what a run would otherwise load on its first use,
so each process forked from it starts with them loaded instead of paying for them in every run."""

import torch._inductor.config  # noqa: F401 - torch.use_deterministic_algorithms imports it: ~2-4 s per process

from benchmark import environment, isolation, registry
from benchmark.sweep import run_task, run_task_limited

registry.methods()
registry.datasets()
environment.git_state()  # two git calls, cached for the process's life (as in the sweep's own process)
environment.cpu_name()

__all__ = ["isolation", "run_task", "run_task_limited"]
