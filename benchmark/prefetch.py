"""Record files decoded in a second process while this one imports what a rebuild needs.

A cold rebuild of the full leaderboard spends about a second decoding its record files' JSON and about a
second importing pandas, scipy and the report code, one after the other. ``RecordPrefetch(folder)``, made
before those imports, forks a reader that decodes every ``runs/*.json`` of the folder on the machine's
other core and hands the decoded files back as one marshal string (plain dicts, lists, strings and
numbers; several times faster to load than JSON); ``bodies()`` returns them once the imports are done.
Nothing is cached between processes: every rebuild reads and decodes every file.

The reader only decodes: validation stays with ``benchmark.records.parse_record``. A file the reader could
not read or decode is left out, and the caller reads it itself (so its error is the one a plain read
gives); where ``fork`` is not available, or the reader dies, every file is read by the caller.
Stdlib only: importing this module costs nothing before the heavy imports.
"""

from __future__ import annotations

import gc
import json
import marshal
import os
import sys
from pathlib import Path
from typing import Any


def record_files(folder: Path) -> list[Path]:
    """Every record file of a results folder (the quarantine and the claim files are not read)."""
    return sorted((Path(folder) / "runs").glob("*.json"))


def decode_files(paths: list[Path]) -> dict[str, Any]:
    """Each file's JSON by its path (as a string); a file that cannot be read or decoded is left out.
    The cycle collector is paused meanwhile: decoding makes no cycles, only millions of containers whose
    allocation would otherwise trigger collections that find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        out = {}
        for path in paths:
            try:
                out[str(path)] = json.loads(path.read_text())  # as records.load_record reads a file
            except (OSError, ValueError):
                continue
        return out
    finally:
        if enabled:
            gc.enable()


class RecordPrefetch:
    """The decoded record files of ``folder``, read by a forked child process started at construction."""

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
        if pid == 0:  # the reader: decode, send, leave without running the parent's exit handlers
            status = 1
            try:
                os.close(read_end)
                data = marshal.dumps(decode_files(record_files(self.folder)))
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def bodies(self) -> dict[str, Any]:
        """The decoded files by path (empty when there was no reader or it failed); waits for the reader."""
        if self._fd is None:
            return {}
        try:
            with os.fdopen(self._fd, "rb") as pipe:
                data = pipe.read()
        finally:
            self._fd = None
            _, status = os.waitpid(self._pid, 0)
        if status != 0 or not data:
            return {}
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
