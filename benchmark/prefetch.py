"""Record files read and validated in a second process while this one imports what a rebuild needs.

A cold rebuild of the full leaderboard spends about a second reading and decoding its record files and
about a second importing pandas, scipy and the report code, one after the other. ``RecordPrefetch``,
made before those imports, forks a reader that reads every ``runs/*.json`` of a folder on the machine's
other core, validates it (``benchmark.records.load_record``, the same code) and hands back the bodies
of the valid files, as one marshal string (plain dicts, lists, strings and numbers: several times faster
to load than JSON), and the reason each invalid file is invalid. Nothing is cached between processes:
every rebuild reads, decodes and validates every file.

A file the reader has no answer for (it appeared later, the reader died, or ``fork`` is not available)
is read by the caller. Importing this module imports no third-party package.
"""

from __future__ import annotations

import gc
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from benchmark.records import RecordError, load_record


def record_files(folder: Path) -> list[Path]:
    """Every record file of a results folder (the quarantine and the claim files are not read)."""
    return sorted((Path(folder) / "runs").glob("*.json"))


def read_files(paths: list[Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body of each valid record file and the reason each invalid one is not valid, by path (as a
    string). The cycle collector is paused meanwhile: reading makes millions of containers and no cycles,
    and their allocation would trigger collections that find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        valid, invalid = {}, {}
        for path in paths:
            try:
                valid[str(path)] = load_record(path).body
            except RecordError as exc:
                invalid[str(path)] = exc.reason
        return valid, invalid
    finally:
        if enabled:
            gc.enable()


class RecordPrefetch:
    """The record files of ``folder``, read and validated by a forked child started at construction."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._pid: int | None = None
        self._fd: int | None = None
        if not hasattr(os, "fork") or not (self.folder / "runs").is_dir():
            return
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the reader: read, send, leave without running the parent's exit handlers
            status = 1
            try:
                os.close(read_end)
                data = marshal.dumps(read_files(record_files(self.folder)))
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def results(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The valid files' bodies and the invalid files' reasons, by path (both empty when there was no
        reader or it failed); waits for the reader."""
        if self._fd is None:
            return {}, {}
        try:
            with os.fdopen(self._fd, "rb") as pipe:
                data = pipe.read()
        finally:
            self._fd = None
            _, status = os.waitpid(self._pid, 0)
        if status != 0 or not data:
            return {}, {}
        enabled = gc.isenabled()
        gc.disable()
        try:
            return marshal.loads(data)
        finally:
            if enabled:
                gc.enable()

    def close(self) -> None:
        """Stop waiting for the reader (its data is dropped)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            os.waitpid(self._pid, 0)
