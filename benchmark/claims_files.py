"""Run claims: two sweeps on one results folder (two terminals, or two machines on a shared folder) share
the work and train each run once. A run is claimed, just before it starts, by creating
``runs/.claims/NAME.claim`` exclusively (``O_CREAT | O_EXCL``: one creator wins, also over NFS v3+); the
file names the host, the process and the start time, and is removed when the record is written. A claim
whose process is gone (same host) or that is older than ``STALE_AFTER_SECONDS`` is taken over."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

#: A claim older than this is abandoned whatever its host says (a run never takes this long here).
STALE_AFTER_SECONDS = 6 * 3600
FOLDER = ".claims"


def claim_path(record: Path) -> Path:
    return record.parent / FOLDER / f"{record.stem}.claim"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(path: Path) -> bool:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return True  # unreadable: a writer killed between create and write
    if time.time() - float(holder.get("started", 0)) > STALE_AFTER_SECONDS:
        return True
    return holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1)))


def claim(record: Path) -> bool:
    """Claim the run whose record is ``record``: True if this process may run it now."""
    path = claim_path(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale(path):
                return False
            path.unlink(missing_ok=True)  # take over an abandoned claim, then try once more
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, f)
        return True
    return False


def release(record: Path) -> None:
    claim_path(record).unlink(missing_ok=True)
