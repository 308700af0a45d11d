"""Record files read and validated in a second process while this one imports what a rebuild needs.

A cold rebuild of the full leaderboard spends about a second reading and decoding its record files and
about a second importing pandas, scipy and the report code, one after the other. ``RecordPrefetch``,
made before those imports, forks a reader that reads every ``runs/*.json`` of a folder on the machine's
other core and validates it (``benchmark.records.load_record``, the same code), then sends back the
bodies of the valid files as one marshal string (plain dicts, lists, strings and numbers: several times
faster to load than JSON) and the reason each invalid file is invalid. Given the suite's scope, it then
chooses the records the suite keeps and gathers the tidy table's rows from them (``benchmark.rows``)
while this process loads the bodies, and sends those too; they are used only where this process chose
the same records. Nothing is cached between processes: every rebuild reads every file.

A file the reader has no answer for (it appeared later, the reader died, or ``fork`` is not available)
is read by the caller. Importing this module imports no third-party package.
"""

from __future__ import annotations

import gc
import marshal
import os
import struct
import sys
from pathlib import Path
from typing import Any

from benchmark.records import RecordError, RunRecord, load_record
from benchmark.rows import choose, gather
from benchmark.scope import SuiteScope

_LENGTH = struct.Struct("<Q")


def record_files(folder: Path) -> list[Path]:
    """Every record file of a results folder (the quarantine and the claim files are not read)."""
    return sorted((Path(folder) / "runs").glob("*.json"))


def read_files(paths: list[Path]) -> tuple[dict[str, Any], dict[str, str], list[RunRecord]]:
    """The body of each valid record file and the reason each invalid one is not valid, by path (as a
    string), and the valid files' records in file order."""
    valid, invalid, records = {}, {}, []
    for path in paths:
        try:
            record = load_record(path)
        except RecordError as exc:
            invalid[str(path)] = exc.reason
        else:
            valid[str(path)] = record.body
            records.append(record)
    return valid, invalid, records


class RecordPrefetch:
    """The record files of ``folder``, read and validated by a forked child started at construction; with
    a ``scope``, the tidy table's rows of the records it keeps as well."""

    def __init__(self, folder: Path, scope: SuiteScope | None = None) -> None:
        self.folder = Path(folder)
        self._pid: int | None = None
        self._pipe: Any = None
        if not hasattr(os, "fork") or not (self.folder / "runs").is_dir():
            return
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the reader: read, send, leave without running the parent's exit handlers
            try:
                os.close(read_end)
                gc.disable()  # millions of containers and no cycles
                with os.fdopen(write_end, "wb") as pipe:
                    valid, invalid, records = read_files(record_files(self.folder))
                    _send(pipe, (valid, invalid))
                    if scope is not None:
                        kept, stale, _ = choose(records, scope)
                        _send(pipe, ([r.run_id for r in kept], stale, gather(kept, stale)))
            finally:
                os._exit(0)
        os.close(write_end)
        self._pid, self._pipe = pid, os.fdopen(read_end, "rb")

    def results(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The valid files' bodies and the invalid files' reasons, by path (both empty when there was no
        reader or it failed); waits for the reader."""
        got = self._receive()
        return got if got is not None else ({}, {})

    def gathered(self, kept: list[str], stale: dict[str, str]) -> dict[str, Any] | None:
        """``benchmark.rows.gather``'s parts for the records whose run ids are ``kept`` (in that order) with
        ``stale``, when the reader chose exactly those; else None. Ends the reader."""
        try:
            got = self._receive()
        finally:
            self.close()
        if got is None or got[0] != kept or got[1] != stale:
            return None
        return got[2]

    def _receive(self) -> Any:
        if self._pipe is None:
            return None
        head = self._pipe.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            self.close()
            return None
        data = self._pipe.read(_LENGTH.unpack(head)[0])
        enabled = gc.isenabled()
        gc.disable()
        try:
            return marshal.loads(data)
        except (EOFError, ValueError, TypeError):  # cut short: the reader died
            self.close()
            return None
        finally:
            if enabled:
                gc.enable()

    def close(self) -> None:
        """Stop reading from the reader and wait for it to end (what it has not sent is dropped)."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
            os.waitpid(self._pid, 0)


def _send(pipe: Any, value: Any) -> None:
    data = marshal.dumps(value)
    pipe.write(_LENGTH.pack(len(data)))
    pipe.write(data)
    pipe.flush()
