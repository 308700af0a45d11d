"""Parts of a rebuild run beside the rest, so that it uses the machine's second core: the statistics page
is written by a forked child process while this one writes the leaderboard, and that child fits the
mixed model (statsmodels' fit) in a child of its own meanwhile.

A forked child sees this process's memory as it was at the fork (the records and tables are not copied
or pickled to reach it); only ``fn``'s return value comes back, pickled through a pipe. An exception in
the child is raised again by ``result()``, with the child's traceback as a note. Where ``fork`` is not
available, ``fn`` runs in this process when the Background is made."""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any


class Background:
    """``Background(fn, *args)`` starts ``fn(*args)`` in a forked child; ``result()`` waits for it and
    returns its value. The child computes exactly what this process would (same code, same inputs)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._pid: int | None = None
        self._fd: int | None = None
        if not hasattr(os, "fork"):
            self._value = fn(*args)
            return
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                try:
                    payload = (True, fn(*args))
                except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
                    exc.add_note("in a background process:\n" + traceback.format_exc().rstrip())
                    payload = (False, exc)
                try:
                    data = pickle.dumps(payload)
                except Exception:  # noqa: BLE001 - an exception or value that cannot be pickled
                    data = pickle.dumps((False, RuntimeError(traceback.format_exc())))
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(data)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(0)  # no exit handlers of the parent's run in the child
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> Any:
        """``fn``'s value (its exception raised here); waits for the child the first time."""
        if self._fd is not None:
            try:
                with os.fdopen(self._fd, "rb") as pipe:
                    data = pipe.read()
            finally:
                self._fd = None
                os.waitpid(self._pid, 0)
            if not data:
                raise RuntimeError("a background process of the rebuild died without an answer")
            ok, value = pickle.loads(data)
            if not ok:
                raise value
            self._value = value
        return self._value

    def join(self) -> None:
        """Wait for the child and drop its value or exception (when this process is failing already)."""
        with contextlib.suppress(BaseException):  # the caller's own exception is the one that matters
            self.result()
