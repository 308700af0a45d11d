"""Imported once by the Dask backend's forkserver (``dask_backend.PRELOAD``): the run task and every
plug-in, so each worker forked from it starts with them loaded instead of importing torch on its own."""

from benchmark import registry
from benchmark.sweep import run_task

registry.methods()
registry.datasets()

__all__ = ["run_task"]
