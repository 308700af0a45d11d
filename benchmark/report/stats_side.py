"""The statistics of a rebuild, computed by a process of their own that starts before anything is imported.

A cold rebuild imports pandas and the report code, reads every record, then tables them; the tests (scipy's
``stats``, statsmodels) cost about as much to import as pandas and are needed only for the statistics page
and for the leaderboard's non-inferiority marks. ``StatsSide.start()``, called first thing, forks a child
that imports them on the machine's other core while this process imports pandas and reads the records;
``submit`` hands it the long table (pickled through a pipe, a few hundred kB), the child answers with the
pairwise tests and the non-inferiority table as soon as they are computed (the leaderboard's marks), then
writes ``statistics.md`` and ``statistics_pairwise.csv`` (fitting the mixed models in a child of its own,
``benchmark.report.background``) while this process writes the leaderboard. The parent never imports
``scipy.stats`` or statsmodels.

The child computes exactly what this process would (same code, same inputs); its exceptions are raised
again here, with the child's traceback as a note. Where ``fork`` is not available everything runs in this
process when it is submitted. Importing this module imports no third-party package.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_LENGTH = struct.Struct("<q")


@dataclass
class StatsRequest:
    """What the statistics need from a rebuild: the long table (one row per run and family), the test
    split's accuracies per condition (for the spread tests), the failed runs' names and where to write."""

    long: pd.DataFrame
    accuracies: pd.DataFrame
    failed: list[str]
    baseline: str | None
    out_dir: Path
    margin: float


def compute_marks(request: StatsRequest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairwise tests and the non-inferiority table the leaderboard's marks come from."""
    from benchmark.statistics import noninferiority, pairwise_tests

    pairwise = pairwise_tests(request.long, request.baseline)
    return pairwise, noninferiority(pairwise, request.margin)


def write_page(request: StatsRequest, pairwise: pd.DataFrame, noninferior: pd.DataFrame) -> None:
    """The statistics page with each training condition's summaries across datasets (IQM, probability of
    improvement, the Bayesian comparison: benchmark.aggregates); the mixed models (one per training
    condition) are fitted meanwhile in the background (their own process)."""
    from benchmark.aggregates import aggregates_markdown
    from benchmark.report.background import Background
    from benchmark.report.statistics_page import write_statistics
    from benchmark.statistics import mixed_models

    r = request
    mixed = Background(mixed_models, r.long, r.baseline) if r.baseline else None
    conditions = sorted(r.long["train_condition"].unique())
    across = {cond: aggregates_markdown(r.long, r.baseline, cond) for cond in conditions}
    write_statistics(r.long, r.failed, r.accuracies, pairwise, r.baseline, r.out_dir,
                     mixed=mixed.result if mixed else None, noninferior=noninferior, margin=r.margin, extra=across)


def _warm() -> None:
    """What the child imports while it waits: the tests' libraries and the page's code."""
    import scipy.stats  # noqa: F401
    import statsmodels.regression.mixed_linear_model  # noqa: F401
    import statsmodels.stats.multitest  # noqa: F401

    import benchmark.aggregates  # noqa: F401
    import benchmark.report.statistics_page  # noqa: F401


def _write(fd: int, payload: Any) -> None:
    try:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a value or an exception that cannot be pickled
        data = pickle.dumps((False, RuntimeError(traceback.format_exc())))
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read(fd: int) -> Any:
    head = _read_exactly(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read_exactly(fd, _LENGTH.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _child(requests: int, answers: int) -> None:
    try:
        try:
            _warm()
            request = _read(requests)
            if request is None:  # the parent failed before it had anything to ask
                return
            pairwise, noninferior = compute_marks(request)
            # Sent by a thread: the pipe holds 64 kB and the parent reads the marks only once its own
            # table is built; the page does not wait for that.
            sending = threading.Thread(target=_write, args=(answers, (True, (pairwise, noninferior))))
            sending.start()
            write_page(request, pairwise, noninferior)
            sending.join()
            _write(answers, (True, None))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            exc.add_note("in the statistics process of the rebuild:\n" + traceback.format_exc().rstrip())
            _write(answers, (False, exc))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # none of the parent's exit handlers run in the child


class StatsSide:
    """``StatsSide.start()`` first; ``submit(request)`` once the records are tabled; ``marks()`` gives the
    pairwise and non-inferiority tables; ``finish()`` waits for the statistics page."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._requests: int | None = None
        self._answers: int | None = None
        self._request: StatsRequest | None = None
        self._marks: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self._done = False

    @classmethod
    def start(cls) -> StatsSide:
        side = cls()
        if hasattr(os, "fork"):
            req_read, req_write = os.pipe()
            ans_read, ans_write = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(req_write)
                os.close(ans_read)
                _child(req_read, ans_write)
            os.close(req_read)
            os.close(ans_write)
            side._pid, side._requests, side._answers = pid, req_write, ans_read
        return side

    def submit(self, request: StatsRequest) -> None:
        self._request = request
        if self._pid is None:
            self._marks = compute_marks(request)
            return
        _write(self._requests, request)
        os.close(self._requests)
        self._requests = None

    def marks(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(pairwise, noninferior)``; waits for the child's first answer."""
        if self._marks is None:
            self._marks = self._answer()
        return self._marks

    def finish(self) -> None:
        """Wait for the statistics page (written here when there is no child)."""
        if self._done:
            return
        self._done = True
        if self._pid is None:
            pairwise, noninferior = self.marks()
            write_page(self._request, pairwise, noninferior)
            return
        self.marks()
        try:
            self._answer()
        finally:
            self._reap()

    def close(self) -> None:
        """End the child without waiting for its page (this process is failing already)."""
        self._done = True
        if self._requests is not None:
            os.close(self._requests)  # the child reads end-of-file and ends
            self._requests = None
        self._reap()

    def _answer(self) -> Any:
        answer = _read(self._answers)
        if answer is None:
            self._reap()
            raise RuntimeError("the statistics process of the rebuild died without an answer")
        ok, value = answer
        if not ok:
            self._reap()
            raise value
        return value

    def _reap(self) -> None:
        if self._answers is not None:
            os.close(self._answers)
            self._answers = None
        if self._pid is not None:
            os.waitpid(self._pid, 0)
            self._pid = None
