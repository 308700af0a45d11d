"""The flags of ``run``, checked before anything is planned or trained: each error names the flag, the
value and what is allowed (argparse's own messages name neither for a value inside a list)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Free space a results folder needs before a sweep starts (records are ~100 KB each).
MIN_FREE_BYTES = 50 * 2**20


class FlagError(ValueError):
    """A command-line flag with a wrong value."""


def positive(value: int, flag: str) -> int:
    if value < 1:
        raise FlagError(f"{flag} {value}: must be a positive integer, e.g. {flag} 2")
    return value


def seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1,2``: non-negative integers, each once."""
    if not text:
        return None
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item.isdigit():
            raise FlagError(f"--seeds {text!r}: {item!r} is not a non-negative integer; write e.g. --seeds 0,1,2")
        out.append(int(item))
    twice = sorted({s for s in out if out.count(s) > 1})
    if twice:
        raise FlagError(f"--seeds {text!r}: seed(s) {twice} given twice; each seed is one run")
    return out


def device(name: str):
    """``--device auto|cpu|cuda|cuda:N``: a device this machine has."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise FlagError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise FlagError(f"--device {name!r}: runs train on cpu or cuda; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FlagError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise FlagError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def results_folder(folder: Path, flag: str = "--results") -> Path:
    """A folder the sweep can write its records to: not a file, creatable, writable, with room. Checked
    before the first run, so no finished run is ever lost to a folder it cannot be written to."""
    if folder.exists() and not folder.is_dir():
        raise FlagError(f"{flag} {folder}: is a file, not a folder; give a folder (it is created if missing)")
    runs = folder / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs, prefix=".write-check.", delete=True):
            pass
    except OSError as exc:
        raise FlagError(f"{flag} {folder}: cannot write records there ({exc.strerror or exc}); give a writable "
                        "folder") from None
    free = shutil.disk_usage(runs).free
    if free < MIN_FREE_BYTES:
        raise FlagError(f"{flag} {folder}: only {free // 2**20} MiB free; a sweep needs at least "
                        f"{MIN_FREE_BYTES // 2**20} MiB for its records")
    if not os.access(runs, os.W_OK):
        raise FlagError(f"{flag} {folder}: not writable; give a writable folder")
    return folder
