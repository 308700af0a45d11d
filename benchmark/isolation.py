"""Each run in a child process, under its suite's time and memory limits (``[limits]`` in a suite file).

A method is code from anyone: its ``fit`` may never return, or allocate far more memory than the machine
has. So a run does not execute in the process that runs the sweep: it executes in a child, and the parent
(the sweep's process on the serial backend, the worker on Dask) waits for its result while it watches the
clock and the child's resident memory. A child past its time limit is killed and the run is recorded as
failed with ``TimeLimit``; one whose resident memory passes its memory limit, with ``MemoryLimit``; one that
dies on its own (a segfault, ``os._exit``, the kernel's OOM killer), with ``RunProcessDied``. The sweep goes
on either way, and a resume skips the recorded run (``--retry-failed`` runs it again).

Where the child comes from, so that a run costs no fresh interpreter (``start_method``):

- ``fork`` of the process that runs the sweep, on the CPU with one torch thread (the default): the child
  starts with torch, the engine, the plug-ins and the loaded data of its parent, and with its parent's
  environment and library state, so it computes exactly what the parent would have. A Dask worker forks
  its runs the same way: it never runs a method itself, so it never starts an OpenMP pool or CUDA.
- ``forkserver`` otherwise (``--threads`` above 1, a GPU, macOS): a child of the forkserver that
  ``dask_backend.warm_forkserver`` started with torch, the engine and every plug-in imported. A fork of
  the sweep's process would not do there: it may have run OpenMP parallel regions, and a forked child
  then hangs in its first parallel op with more than one thread (measured here); and it may have
  initialised CUDA, which a forked child cannot use.

Memory is measured, not capped with ``RLIMIT_AS``: a run's address space is not what it uses (1.1 GB of
address space for 0.35 GB resident in a smoke run here; CUDA maps tens of GB more), so an address-space
cap would fail honest runs, and the error it gives (an allocation failure inside the method) cannot be
told from the method's own. The parent reads the child's
resident high-water mark (``VmHWM``, ``/proc/PID/status``) every ``POLL_SECONDS``, and kills the child at
the first reading above the limit. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How often the parent reads the child's memory and the clock. A run that ends sooner is not slowed:
#: its result is read the moment it arrives. A run that allocates as fast as it can (0.5-0.7 GB/s of fresh
#: pages here) is stopped 20-40 MB past its memory limit (measured); at 4 GB/s it would be ~0.2 GB.
POLL_SECONDS = 0.05
#: The largest result a child may send (a run's record body is ~0.1-1 MB).
MAX_RESULT_BYTES = 256 * 2**20


@dataclass(frozen=True)
class RunLimits:
    """A suite's limits per run (``[limits]`` in its file). The defaults fit a 2-core, 24 GiB machine with
    room to spare: the slowest committed run took 40 s (robult on mfeat), the largest peaked at 0.62 GB
    resident (conformal_shapley on mfeat), the engine's ~0.35 GB included."""

    seconds: float = 1800.0
    memory_mb: float = 8192.0

    def to_json(self) -> dict[str, float]:
        return {"seconds": self.seconds, "memory_mb": self.memory_mb}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> RunLimits:
        return cls(**d) if d else cls()


@dataclass
class ChildResult:
    """What became of a call in a child: ``value`` (what the target returned) when it finished, else
    ``error`` (type, message, traceback) saying why not; its wall time and peak resident memory."""

    value: Any = None
    error: dict[str, str] | None = None
    seconds: float = 0.0
    peak_rss_mb: float | None = None


def memory_mb(pid: int) -> float | None:
    """The resident high-water mark of process ``pid`` in MB (``VmHWM``, at least ``VmRSS``), or None where
    it cannot be read (no ``/proc``, or the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    peak = None
    for line in text.splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            value = int(line.split()[1]) / 1024
            peak = value if peak is None else max(peak, value)
    return peak


def start_method(device: str = "cpu", threads: int = 1, worker: bool = False) -> str:
    """How a run's child is started (see the module's docstring): ``fork`` on Linux for the runs of a Dask
    ``worker`` and for one-thread CPU runs, else ``forkserver`` where the platform has it, else ``spawn``
    (a fresh interpreter per run)."""
    if sys.platform.startswith("linux") and (worker or (device == "cpu" and threads == 1)):
        return "fork"
    if worker and hasattr(os, "fork"):
        return "fork"  # a worker cannot use a forkserver: its own would import the suite again, per worker
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _exit_when_parent_dies(alive: Any) -> None:
    """In the child: return from ``poll`` only when the parent's end of ``alive`` closes (the parent died),
    then end this process, so a killed sweep leaves no run behind."""
    with contextlib.suppress(OSError, EOFError):
        alive.poll(None)
    os._exit(70)


def _child_main(target: Callable[..., Any], args: tuple[Any, ...], conn: Any, alive: Any) -> None:
    """The child: its own process group (the parent kills the whole group, and the terminal's Ctrl-C goes
    to the parent, which stops the run itself), a watchdog on the parent, the call, its result sent back."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    threading.Thread(target=_exit_when_parent_dies, args=(alive,), daemon=True).start()
    try:
        result: tuple[str, Any] = ("ok", target(*args))
    except BaseException as exc:  # noqa: BLE001 - whatever ends the call is reported to the parent
        result = ("error", {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()})
    for stream in (sys.stdout, sys.stderr):  # what the method printed, before the parent moves on
        with contextlib.suppress(Exception):  # a closed stream must not keep the child alive
            stream.flush()
    try:
        try:  # JSON, not pickle: what the child sends back is data, never code the parent would run
            data = json.dumps(result, allow_nan=True).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps(["error", {"type": "UnserialisableResult", "traceback": "",
                                         "message": f"the run's result is not plain JSON data: {exc}"}]).encode()
        conn.send_bytes(data)
    finally:
        os._exit(0)


class _Child:
    """A started child: its pid, whether it still runs, its end (killed with its process group)."""

    def __init__(self, target: Callable[..., Any], args: tuple[Any, ...], start: str) -> None:
        self.reader, writer = multiprocessing.Pipe(duplex=False)
        alive_reader, self.alive = multiprocessing.Pipe(duplex=False)
        self.status: int | None = None
        self.reaped_elsewhere = False
        self.process = None
        self.finished_at = 0.0
        if start == "fork":
            for stream in (sys.stdout, sys.stderr):  # else the child would print the parent's pending output
                stream.flush()
            pid = os.fork()
            if pid == 0:  # the child
                try:
                    self.reader.close()
                    self.alive.close()
                    _child_main(target, args, writer, alive_reader)
                finally:
                    os._exit(71)
            self.pid = pid
        else:
            ctx = multiprocessing.get_context(start)
            self.process = ctx.Process(target=_child_main, args=(target, args, writer, alive_reader), daemon=True)
            self.process.start()
            self.pid = self.process.pid
        writer.close()
        alive_reader.close()

    def running(self) -> bool:
        if self.process is not None:
            return self.process.is_alive()
        if self.status is None and not self.reaped_elsewhere:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # a SIGCHLD handler of the host process reaped it: its code is lost
                self.reaped_elsewhere = True
                return False
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is None and not self.reaped_elsewhere

    def exit_code(self) -> int | None:
        """The exit code once ended (negative: the signal that ended it; None: not known)."""
        if self.process is not None:
            self.process.join()
            return self.process.exitcode
        if self.status is None and not self.reaped_elsewhere:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.reaped_elsewhere = True
                return None
            self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def end(self, grace: float = 1.0) -> int | None:
        """Its exit code, once it ended: waited for up to ``grace`` seconds, then killed."""
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.running():
            self.kill()
        return self.exit_code()

    def kill(self) -> None:
        for kill in (lambda: os.killpg(self.pid, signal.SIGKILL), lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                kill()
                return
            except (ProcessLookupError, PermissionError):
                continue

    def close(self, finished: bool = False) -> None:
        """Close the pipes; reap the child, killed first if it still runs. A child that ``finished`` (sent
        its result) is left to exit on its own and reaped by a later call: tearing down its memory takes
        ~20 ms, which the sweep need not wait for."""
        self.reader.close()
        if finished and self.running():
            with _EXITING_LOCK:
                _EXITING.append(self)
            return
        if self.running():
            self.kill()
        self.reap()

    def reap(self) -> None:
        self.exit_code()
        self.alive.close()
        if self.process is not None:
            self.process.close()


#: Children that sent their result and are exiting; reaped (or, past ``EXIT_GRACE_SECONDS``, killed) by the
#: next call.
_EXITING: list[_Child] = []
EXIT_GRACE_SECONDS = 5.0


_EXITING_LOCK = threading.Lock()  # a Dask worker with several threads runs several children at once


def _reap_exiting() -> None:
    with _EXITING_LOCK:
        for child in list(_EXITING):
            if child.running() and time.monotonic() - child.finished_at < EXIT_GRACE_SECONDS:
                continue
            _EXITING.remove(child)
            if child.running():
                child.kill()
            child.reap()


def _died(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        cause = " (SIGKILL: the kernel's out-of-memory killer, or someone else, killed it)" if -code == 9 else ""
        return f"killed by signal {name}{cause}"
    return f"exit code {code}"


def call_in_child(target: Callable[..., Any], args: tuple[Any, ...], limits: RunLimits,
                  start: str | None = None) -> ChildResult:
    """``target(*args)`` in a child process started by ``start`` (``fork``, ``forkserver`` or ``spawn``;
    default ``start_method()``), stopped at ``limits``. Never raises for what the child does; a
    KeyboardInterrupt in the parent kills the child and propagates."""
    _reap_exiting()
    t0 = time.monotonic()
    child = _Child(target, args, start or start_method())
    result = ChildResult()

    def fail(kind: str, message: str) -> None:
        result.error = {"type": kind, "message": message, "traceback": ""}

    try:
        while True:
            if child.reader.poll(POLL_SECONDS):
                try:
                    kind, value = json.loads(child.reader.recv_bytes(MAX_RESULT_BYTES))
                except (EOFError, OSError, ValueError):  # it died before or while sending its result
                    fail("RunProcessDied", f"the task did not finish: its process ended without a result "
                                           f"({_died(child.end())})")
                    break
                if kind == "ok":
                    result.value = value
                else:
                    result.error = value
                child.finished_at = time.monotonic()
                break
            now = memory_mb(child.pid)
            if now is not None:
                result.peak_rss_mb = max(result.peak_rss_mb or 0.0, now)
            elapsed = time.monotonic() - t0
            if not child.running():
                if child.reader.poll(0):
                    continue  # it sent its result and ended between two looks: read the result
                fail("RunProcessDied", "the task did not finish: its process ended without a result "
                                       f"({_died(child.end())})")
                break
            if now is not None and now > limits.memory_mb:
                child.kill()
                fail("MemoryLimit", f"the run's resident memory reached {now:.0f} MB, past its suite's limit of "
                                    f"{limits.memory_mb:g} MB, and the run was stopped after {elapsed:.1f} s "
                                    "(raise [limits] memory_mb in the suite file if the method needs more)")
                break
            if elapsed > limits.seconds:
                child.kill()
                fail("TimeLimit", f"the run took longer than its suite's time limit of {limits.seconds:g} s and "
                                  "was stopped (raise [limits] seconds in the suite file if the method needs "
                                  "longer)")
                break
    finally:
        child.close(finished=bool(child.finished_at))
        result.seconds = time.monotonic() - t0
    return result
