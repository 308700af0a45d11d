"""One slow computation of a rebuild run beside the rest: the mixed model (statsmodels' import and fit,
about a second) goes to a forked child process while this one renders the tables, so a rebuild uses the
machine's second core. Falls back to computing in this process where ``fork`` is not available."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


class Background:
    """``run(fn, *args)`` starts ``fn(*args)`` in a forked child; ``result()`` waits for it. The child
    computes exactly what this process would (same code, same inputs, same library versions)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._future: Future | None = None
        self._pool: ProcessPoolExecutor | None = None
        if "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
            self._future = self._pool.submit(fn, *args)
        else:
            self._value = fn(*args)

    def result(self) -> Any:
        if self._future is not None:
            try:
                self._value = self._future.result()
            finally:
                self._pool.shutdown()
                self._future = None
        return self._value
