"""Record files read and validated in a second process while this one imports what a rebuild needs.

A cold rebuild of the full leaderboard spends about a second reading and decoding its record files and
about a second importing pandas, scipy and the report code, one after the other. ``RecordPrefetch``,
made before those imports, forks a reader that reads every ``runs/*.json`` of a folder on the machine's
other core and validates it (``benchmark.records.load_record``, the same code). It hands back, a batch of
files at a time, the bodies of the valid files as marshal data (plain dicts, lists, strings and numbers:
several times faster to load than JSON) and the reason each invalid file is invalid; the batches go
through memory shared with this process (a pipe carries only where each one lies), so the reader never
waits for this process to finish importing, and this process loads the first batches while the reader
reads the last. Given the suite's scope, the reader then chooses the records the suite keeps and gathers
the tidy table's rows from them (``benchmark.rows``), used only where this process chose the same
records. Nothing is cached between processes: every rebuild reads every file.

A file the reader has no answer for (it appeared later, the reader died, or ``fork`` is not available)
is read by the caller. Importing this module imports no third-party package.
"""

from __future__ import annotations

import array
import contextlib
import gc
import marshal
import mmap
import os
import struct
import sys
from pathlib import Path
from typing import Any

from benchmark.records import RecordError, RunRecord, load_record
from benchmark.rows import choose, gather
from benchmark.scope import SuiteScope

#: A message of the reader: where a marshal string lies in the shared memory (offset, length), or its
#: length alone (offset ``_INLINE``) when the string follows in the pipe; length 0 ends the batches.
_MESSAGE = struct.Struct("<qq")
_INLINE = -1
_BATCHES = 12


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
        self._shared: mmap.mmap | None = None
        if not hasattr(os, "fork") or not (self.folder / "runs").is_dir():
            return
        paths = record_files(self.folder)
        try:  # room for the marshal data (smaller than the JSON); pages are only used where written
            self._shared = mmap.mmap(-1, max(2 * sum(p.stat().st_size for p in paths), 1 << 20))
        except (OSError, ValueError):  # no such memory here (or a file went away): the caller reads the files
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
                    self._read(pipe, paths, scope)
            finally:
                os._exit(0)
        os.close(write_end)
        self._pid, self._pipe = pid, os.fdopen(read_end, "rb")

    def _read(self, pipe: Any, paths: list[Path], scope: SuiteScope | None) -> None:
        offset, records = 0, []
        size = max(1, -(-len(paths) // _BATCHES))
        for start in range(0, len(paths), size):
            valid, invalid, batch = read_files(paths[start:start + size])
            records += batch
            offset = self._send(pipe, (valid, invalid), offset)
        pipe.write(_MESSAGE.pack(0, 0))
        pipe.flush()
        if scope is not None:
            kept, stale, _ = choose(records, scope)
            self._send(pipe, ([r.run_id for r in kept], stale, _packed(gather(kept, stale))), offset)

    def _send(self, pipe: Any, value: Any, offset: int) -> int:
        data = marshal.dumps(value)
        if offset + len(data) <= len(self._shared):
            self._shared[offset:offset + len(data)] = data
            pipe.write(_MESSAGE.pack(offset, len(data)))
            offset += len(data)
        else:
            pipe.write(_MESSAGE.pack(_INLINE, len(data)))
            pipe.write(data)
        pipe.flush()
        return offset

    def results(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The valid files' bodies and the invalid files' reasons, by path (whatever the reader sent before
        it failed, if it did; both empty without a reader); waits for the reader's last batch."""
        valid: dict[str, Any] = {}
        invalid: dict[str, str] = {}
        while (batch := self._receive()) is not None:
            valid.update(batch[0])
            invalid.update(batch[1])
        return valid, invalid

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
        """The next value the reader sent (None at the end of the batches, or when it died)."""
        if self._pipe is None:
            return None
        head = self._pipe.read(_MESSAGE.size)
        if len(head) < _MESSAGE.size:
            self.close()
            return None
        offset, length = _MESSAGE.unpack(head)
        if length == 0:
            return None
        enabled = gc.isenabled()
        gc.disable()
        try:
            if offset == _INLINE:
                return marshal.loads(self._pipe.read(length))
            with memoryview(self._shared)[offset:offset + length] as data:
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
        if self._shared is not None:
            self._shared.close()
            self._shared = None


def _packed(parts: dict[str, Any]) -> dict[str, Any]:
    """The long lists of ``gather``'s parts as the bytes of C arrays of doubles and 64-bit integers (what
    numpy reads without a Python object per element; ``benchmark.results.table_of`` reads either), where
    their elements allow it."""
    out = dict(parts)
    for key, kind in (("values", "d"), ("cond_codes", "q"), ("metric_codes", "q")):
        with contextlib.suppress(TypeError, OverflowError):  # e.g. a metric recorded as null: the list as it is
            out[key] = array.array(kind, parts[key]).tobytes()
    return out
