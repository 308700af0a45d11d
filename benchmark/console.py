"""What the command line says and where: one ``benchmark`` logger, shown on stderr at the level ``-q`` /
``-v`` choose, and copied whole (every level, every progress line) to a sweep's log file in its results
folder. Progress lines go to the console only where no bar draws them (output that is not a terminal),
so a log never holds a bar's frames."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

LOG = logging.getLogger("benchmark")
#: ``extra`` of a per-run progress line: shown on the console only when ``show_progress_lines`` says so.
PROGRESS = {"progress": True}
#: ``extra`` of a line already printed on stdout (a result): copied to the log file, not shown again.
FILE_ONLY = {"file_only": True}


class _Console(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}
        return prefix.get(record.levelno, "") + record.getMessage()


class _ProgressGate(logging.Filter):
    """Lets a progress line through only while ``show`` is set (no bar on screen, not ``--no-progress``)."""

    show = False

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False
        return self.show or not getattr(record, "progress", False)


_GATE = _ProgressGate()
_console: logging.Handler | None = None


def configure(verbosity: int = 0) -> None:
    """Console output for ``verbosity``: -1 (``-q``) warnings and errors only, 0 what a sweep does, 1
    (``-v``) details too. Idempotent: ``main`` may be called several times in one process (tests)."""
    global _console
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    if _console is not None:
        LOG.removeHandler(_console)
    _console = logging.StreamHandler(sys.stderr)
    _console.setFormatter(_Console())
    _console.addFilter(_GATE)
    _console.setLevel(level)
    LOG.addHandler(_console)
    LOG.setLevel(logging.DEBUG)
    LOG.propagate = False


def out(text: str) -> None:
    """A result line: on stdout (what scripts read), and in the log file."""
    print(text, flush=True)
    LOG.info("%s", text, extra=FILE_ONLY)


def quiet() -> bool:
    return _console is not None and _console.level > logging.INFO


def show_progress_lines(show: bool) -> None:
    _GATE.show = show


def open_log_file(results: Path, command: str) -> Path:
    """A new log file for one sweep, ``RESULTS/logs/run-YYYYmmdd-HHMMSS.log`` (UTC; a suffix where two
    sweeps start in one second), holding every line at every level, with times."""
    folder = results / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"run-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"run-{stamp}-{n}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    LOG.addHandler(handler)
    LOG.debug("command: %s", command)
    return path


def close_log_files() -> None:
    for handler in [h for h in LOG.handlers if isinstance(h, logging.FileHandler)]:
        handler.close()
        LOG.removeHandler(handler)
