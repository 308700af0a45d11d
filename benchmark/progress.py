"""A sweep's progress: how long each run is expected to take (from past records), an ETA that weighs the
runs still to do by those times (a robult run takes ~8x an early-fusion one, so counting runs misleads),
and the display: a bar on a terminal, one plain line per run elsewhere."""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from benchmark.console import LOG, PROGRESS

#: A record's file name: ``ROW__DATASET__RUNID.json`` (``benchmark.records.record_path``).
RECORD_NAME = re.compile(r"^(?P<row>.+?)__(?P<dataset>.+?)__[0-9a-f]{20}\.json$")
#: A record's top-level ``wall_seconds``: the last key of a file written with sorted keys, so its tail holds it.
_WALL = re.compile(rb'\n "wall_seconds": ([0-9.eE+-]+)\n\}\s*$')
#: What a run is expected to take when nothing of its kind was ever recorded.
DEFAULT_SECONDS = 10.0


def past_seconds(folders: Iterable[Path]) -> dict[tuple[str, str], list[float]]:
    """Wall seconds of every recorded run in ``folders`` (results folders), by (row, dataset), read from
    each file's name and last bytes: no JSON parse, so even the full suite's records cost well under a
    second. Failed runs count too (a run stopped at its time limit took that long)."""
    out: dict[tuple[str, str], list[float]] = {}
    for folder in folders:
        for path in sorted((Path(folder) / "runs").glob("*.json")):
            name = RECORD_NAME.match(path.name)
            if not name:
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(0, 2)
                    f.seek(max(0, f.tell() - 256))
                    found = _WALL.search(f.read())
            except OSError:
                continue
            if found:
                out.setdefault((name["row"], name["dataset"]), []).append(float(found.group(1)))
    return out


class ExpectedTimes:
    """Expected seconds of a run of (row, dataset): the median of that pair's past runs; else, from the
    pairs seen, the row's median times the dataset's, over the overall median (runs of a method scale
    about alike across datasets); else whichever of the two is known; else the overall median; else
    ``DEFAULT_SECONDS``."""

    def __init__(self, samples: dict[tuple[str, str], list[float]]) -> None:
        self.pair = {k: statistics.median(v) for k, v in samples.items() if v}
        rows: dict[str, list[float]] = {}
        datasets: dict[str, list[float]] = {}
        for (row, dataset), s in self.pair.items():
            rows.setdefault(row, []).append(s)
            datasets.setdefault(dataset, []).append(s)
        self.row = {k: statistics.median(v) for k, v in rows.items()}
        self.dataset = {k: statistics.median(v) for k, v in datasets.items()}
        self.overall = statistics.median(self.pair.values()) if self.pair else None

    def __call__(self, row: str, dataset: str) -> float:
        if (row, dataset) in self.pair:
            return self.pair[row, dataset]
        r, d = self.row.get(row), self.dataset.get(dataset)
        if r is not None and d is not None and self.overall:
            return r * d / self.overall
        for known in (r, d, self.overall):
            if known is not None:
                return known
        return DEFAULT_SECONDS

    def known(self, row: str, dataset: str) -> bool:
        return (row, dataset) in self.pair


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``42s``."""
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Eta:
    """Time left = the expected seconds of the runs still to do x the sweep's observed pace (wall seconds
    elapsed per expected second finished). The pace absorbs parallel workers, a machine slower than the
    one the records came from, and per-run overhead; before the first run ends it is 1 / ``parallel``."""

    def __init__(self, expected: list[float], parallel: int = 1) -> None:
        self.left = float(sum(expected))
        self.finished = 0.0
        self.parallel = max(parallel, 1)
        self.started = time.monotonic()

    def done(self, expected: float) -> None:
        self.left = max(self.left - expected, 0.0)
        self.finished += expected

    def seconds(self, now: float | None = None) -> float:
        elapsed = (now if now is not None else time.monotonic()) - self.started
        pace = elapsed / self.finished if self.finished > 0 else 1.0 / self.parallel
        return self.left * pace


class Progress:
    """Reports each finished run: a tqdm bar on a terminal (its ETA is ours, not tqdm's count-based one),
    else a plain line per run; every line also goes to the log file. ``mode``: "bar", "lines" or "off"."""

    def __init__(self, expected: dict[str, float], mode: str, parallel: int = 1) -> None:
        self.expected = expected
        self.total = len(expected)
        self.count = 0
        self.eta = Eta(list(expected.values()), parallel)
        self.bar = None
        if mode == "bar" and self.total:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc="runs", unit="run", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
            self.bar.set_postfix_str(f"ETA ~{duration(self.eta.seconds())}", refresh=True)
        from benchmark import console

        console.show_progress_lines(mode == "lines")

    def update(self, run_id: str, what: str, outcome: str) -> None:
        """One run ended (or was left to another sweep): ``what`` names it, ``outcome`` says how it went."""
        self.count += 1
        self.eta.done(self.expected.get(run_id, 0.0))
        left = self.eta.seconds()
        eta = "done" if self.count >= self.total else f"ETA ~{duration(left)}"
        LOG.info("[%d/%d] %s: %s; %s", self.count, self.total, what, outcome, eta, extra=PROGRESS)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{eta}, last {what}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
