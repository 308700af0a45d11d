"""Run specs, run ids and run records (one JSON file per run, written atomically)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark import ENGINE_VERSION
from benchmark.paths import REPO_ROOT

#: Engine modules whose code changes what a run computes; their source is part of every run_id.
ENGINE_SOURCES = ("contracts.py", "data.py", "training.py", "metrics.py", "execution.py", "seeding.py",
                  "timing.py", "cost.py", "hparams.py",
                  "protocols/__init__.py", "protocols/base.py", "protocols/missing.py",
                  "protocols/noise.py", "protocols/shift.py", "protocols/training.py")


@dataclass(frozen=True)
class RunSpec:
    method: str
    dataset: str
    seed: int
    train_condition: str = "standard"
    hparams: dict[str, Any] = field(default_factory=dict)
    dataset_params: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    test_conditions: tuple[str, ...] = ()
    draw: int = 0  # the hyperparameter draw (0 = the defaults)

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data (what run_id hashes). Built field by field with deep copies of the
        parameter dicts only: ``dataclasses.asdict`` also copied every condition key, and planning the
        full suite spent a third of its time there."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("hparams", "dataset_params", "budget"):
            d[key] = copy.deepcopy(d[key])
        d["test_conditions"] = list(self.test_conditions)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**{**d, "test_conditions": tuple(d.get("test_conditions", ()))})

    @property
    def label(self) -> str:
        return f"{self.method} on {self.dataset} ({self.train_condition}, seed {self.seed})"


def dataset_label(spec: dict[str, Any]) -> str:
    """The dataset as tables name it: its name, with its parameters when the suite set any
    (``synthetic_pid[n_modalities=4]``), so variants of one dataset are never pooled or paired."""
    params = spec.get("dataset_params") or {}
    if not params:
        return str(spec["dataset"])
    return f"{spec['dataset']}[{','.join(f'{k}={params[k]}' for k in sorted(params))}]"


def dataset_name(label: str) -> str:
    """The dataset's registry name in a ``dataset_label``: ``synthetic_pid[n_modalities=4]`` -> ``synthetic_pid``."""
    return label.partition("[")[0]


def engine_hash() -> str:
    h = hashlib.sha256(ENGINE_VERSION.encode())
    for name in ENGINE_SOURCES:
        h.update((REPO_ROOT / "benchmark" / name).read_bytes())
    return h.hexdigest()


def run_id(spec: RunSpec, method_source: str, dataset_source: str, dataset_checksum: str, engine: str) -> str:
    payload = json.dumps(
        {"spec": spec.to_json(), "method_source": method_source, "dataset_source": dataset_source,
         "dataset_checksum": dataset_checksum, "engine": engine},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def record_path(results: Path, spec: RunSpec, rid: str) -> Path:
    return results / "runs" / f"{spec.method}__{spec.dataset}__{rid}.json"


def write_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a killed writer leaves either
    the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    """A record, or None when the file is unreadable (then the run counts as not done)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
