"""Honest clocks and memory meters: CUDA events and device peak memory on a GPU, a monotonic clock and
the process's peak resident memory on the CPU. Every record says which was used."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


class Clock:
    """Elapsed seconds between ``start()`` and ``stop(token)``.

    On CUDA, a pair of events brackets the work and ``stop`` synchronises on the end event, so the time
    is the device's, not the host's launch time. On the CPU, ``time.perf_counter`` (monotonic)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.name = "cuda_events" if self.cuda else "perf_counter"

    def start(self) -> object:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def stop(self, token: object) -> float:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return token.elapsed_time(end) / 1000.0  # type: ignore[attr-defined]
        return time.perf_counter() - token  # type: ignore[operator]


@dataclass
class MemoryReading:
    peak_mb: float | None = None
    meter: str = ""


class MemoryMeter:
    """Peak memory of one phase. CUDA: ``max_memory_allocated`` after a reset. Linux CPU: the resident
    high-water mark (VmHWM) after resetting it through ``/proc/self/clear_refs``; elsewhere the
    process's lifetime peak (``ru_maxrss``), which the record names as such."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.resettable = not self.cuda and _CLEAR_REFS.exists() and _STATUS.exists()
        if self.cuda:
            self.name = "cuda_max_memory_allocated"
        elif self.resettable:
            self.name = "process_vmhwm_reset_per_phase"
        else:
            self.name = "process_lifetime_peak_rss"

    @contextmanager
    def phase(self) -> Iterator[MemoryReading]:
        reading = MemoryReading(meter=self.name)
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        elif self.resettable:
            try:
                _CLEAR_REFS.write_text("5")
            except OSError:
                self.resettable = False
                self.name = reading.meter = "process_lifetime_peak_rss"
        yield reading
        reading.peak_mb = self._peak_mb()

    def _peak_mb(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20
        if self.resettable:
            for line in _STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024
