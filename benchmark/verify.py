"""``python -m benchmark verify``: re-run a seeded sample of committed records and compare what they
computed, metric by metric. A run id does not hash the engine's own source (so refactors do not
invalidate every record); this check is what catches a change that alters numbers without bumping
``ENGINE_VERSION``.

On the CPU model that made a record, every metric, validation score and input hash must be identical.
On another CPU model, float32 kernels differ in their last bits (measured here: an Intel Xeon's records
re-run on an AMD EPYC differ by ~1e-8 in log-likelihood, and standardised inputs in their last bit), so
the comparison there allows ``CROSS_MACHINE_TOLERANCE`` on each metric and skips the input hashes; the
report says which mode each record was checked in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.records import RunRecord
from benchmark.results import SuiteScope, load

#: Largest absolute difference of a metric allowed when the record was made on another CPU model.
CROSS_MACHINE_TOLERANCE = 1e-6


@dataclass
class Check:
    record: RunRecord
    mode: str  # "exact" or "tolerance"
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass
class Report:
    checks: list[Check]
    skipped: list[str]  # records that cannot be verified (stale, failed), with why

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def text(self) -> str:
        lines = []
        for c in self.checks:
            head = f"{'OK  ' if c.ok else 'DIFF'} {c.record.path.name} ({c.record.spec.describe}; {c.mode})"
            lines.append(head)
            lines += [f"       {d}" for d in c.differences[:10]]
            if len(c.differences) > 10:
                lines.append(f"       ... and {len(c.differences) - 10} more differences")
        lines += [f"skip {s}" for s in self.skipped]
        bad = sum(not c.ok for c in self.checks)
        if not self.checks:
            lines.append("nothing verified: no fresh finished record in the sample; rerun the suite first")
        elif bad:
            lines.append(f"{bad} of {len(self.checks)} re-run record(s) differ: the code computes other numbers "
                         "than the ones committed. If the change is intended, bump ENGINE_VERSION in "
                         "benchmark/__init__.py and rerun the suites; otherwise find what changed them.")
        else:
            lines.append(f"all {len(self.checks)} re-run record(s) reproduce their committed numbers")
        return "\n".join(lines)


def sample(records: list[RunRecord], n: int, seed: int = 0) -> list[RunRecord]:
    """``n`` records chosen by a generator seeded with ``seed`` over the records sorted by run id, so the
    same folder and seed always give the same sample."""
    ordered = sorted(records, key=lambda r: r.run_id)
    if n >= len(ordered):
        return ordered
    picks = np.random.default_rng(seed).choice(len(ordered), size=n, replace=False)
    return [ordered[i] for i in sorted(picks)]


def _compare(name: str, old: Any, new: Any, exact: bool, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            _compare(f"{name}.{k}" if name else str(k), old.get(k), new.get(k), exact, out)
    elif isinstance(old, int | float) and isinstance(new, int | float) and not isinstance(old, bool):
        same = (old == new or (math.isnan(old) and math.isnan(new))) if exact else (
            math.isclose(old, new, rel_tol=0.0, abs_tol=CROSS_MACHINE_TOLERANCE)
            or (math.isnan(old) and math.isnan(new)))
        if not same:
            out.append(f"{name}: committed {old!r}, now {new!r}")
    elif old != new:
        out.append(f"{name}: committed {old!r}, now {new!r}")


def payload(record: RunRecord) -> dict[str, Any]:
    """The task payload that re-runs a record: its spec and its resolved conditions, as recorded."""
    train = record.body["train_condition_resolved"]
    return {"spec": record.spec.to_json(),
            "conditions": {"train": [record.spec.train_condition, train],
                           "tests": [[k, record.conditions[k]] for k in record.spec.test_conditions]}}


def verify_record(record: RunRecord, cache: Any = None) -> Check:
    """Re-run ``record`` on this machine's CPU and compare its metrics, validation scores and input hashes."""
    import torch

    from benchmark.environment import describe
    from benchmark.sweep import run_task

    here = describe(torch.device("cpu"))["device_name"]
    exact = record.body.get("environment", {}).get("device_name") == here
    body = run_task(payload(record), [], "cpu", int(record.body.get("environment", {}).get("torch_threads", 1)),
                    cache)
    check = Check(record, "exact" if exact else f"tolerance {CROSS_MACHINE_TOLERANCE:g} (made on another CPU)")
    if body["status"] != "ok":
        check.differences.append(f"the re-run failed: {body['error']['type']}: {body['error']['message']}")
        return check
    for key in ("metrics", "val_metrics", "extras_test"):
        _compare(key, record.body.get(key), body.get(key), exact, check.differences)
    if body["dataset_checksum"] != record.provenance.dataset_checksum:
        check.differences.append("the prepared data's checksum differs from the record's")
    if exact:
        _compare("input_sha256", record.body.get("input_sha256"), body.get("input_sha256"), True, check.differences)
    return check


def verify(folder: Path, scope: SuiteScope | None = None, n: int = 3, seed: int = 0) -> Report:
    """Re-run a seeded sample of ``n`` of the folder's fresh finished records (within ``scope``)."""
    from benchmark.sweep import DataCache

    results = load(folder, scope)
    skipped = [f"{r.path.name}: stale ({reason})" for r in results.records if (reason := results.stale.get(r.run_id))]
    fresh = [r for r in results.ok if r.run_id not in results.stale]
    cache = DataCache()
    return Report([verify_record(r, cache) for r in sample(fresh, n, seed)], skipped)
