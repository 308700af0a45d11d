"""Run specs, run ids and run records (one JSON file per run, written atomically), and ``RunRecord``: a
record read back, validated in one place. Nothing here imports torch, so reading results back is cheap.

A run id hashes the spec, the method's and the loader's sources, the data checksum, the protocols'
versions and ``ENGINE_VERSION`` (bumped by hand when a change to the engine changes what a run computes;
``python -m benchmark verify`` re-runs committed records to catch a change that should have bumped it).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark.paths import BUILTIN_ROOT, REPO_ROOT
from benchmark.version import ENGINE_VERSION

#: The layout of a record file; version 1 had no provenance and no resolved conditions.
RECORD_VERSION = 2
STATUSES = ("ok", "failed")
_RUN_ID = re.compile(r"^[0-9a-f]{20}$")


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
    label: str = ""  # a variant's row label ("" = the method's name)

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data (what run_id hashes). Built field by field with deep copies of the
        parameter dicts only: ``dataclasses.asdict`` also copied every condition key, and planning the
        full suite spent a third of its time there. An empty label is left out, so a base method's run id
        is what it was before variants existed."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("hparams", "dataset_params", "budget"):
            d[key] = copy.deepcopy(d[key])
        d["test_conditions"] = list(self.test_conditions)
        if not self.label:
            del d["label"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**{**d, "test_conditions": tuple(d.get("test_conditions", ()))})

    @property
    def row(self) -> str:
        """The leaderboard row this run belongs to: the variant's label, else the method's name."""
        return self.label or self.method

    @property
    def describe(self) -> str:
        return f"{self.row} on {self.dataset} ({self.train_condition}, seed {self.seed})"


def dataset_label(spec: dict[str, Any] | RunSpec) -> str:
    """The dataset as tables name it: its name, with its parameters when the suite set any
    (``synthetic_pid[n_modalities=4]``), so variants of one dataset are never pooled or paired."""
    if isinstance(spec, RunSpec):
        name, params = spec.dataset, spec.dataset_params
    else:
        name, params = spec["dataset"], spec.get("dataset_params") or {}
    if not params:
        return str(name)
    return f"{name}[{','.join(f'{k}={params[k]}' for k in sorted(params))}]"


def dataset_name(label: str) -> str:
    """The dataset's registry name in a ``dataset_label``: ``synthetic_pid[n_modalities=4]`` -> ``synthetic_pid``."""
    return label.partition("[")[0]


def relative_to_checkout(path: Path) -> str:
    """A path as records store it: relative to the built-in plug-ins' root (the checkout, or the installed
    package's copy) or to the project folder when inside one, else as given: records never hold a
    machine's absolute paths for the built-in plug-ins."""
    resolved = Path(path).resolve()
    for root in (BUILTIN_ROOT, REPO_ROOT):
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


@dataclass(frozen=True)
class Provenance:
    """What a run's numbers depend on besides its spec. Every field but the two file names is hashed
    into the run id; the file names let a rebuild re-hash the sources and flag a stale record."""

    engine_version: str
    method_file: str
    method_source: str
    dataset_file: str
    dataset_source: str
    dataset_checksum: str
    protocols: str  # ``key@version`` of every training and test condition, joined by "|"

    def to_json(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Provenance:
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(d))
        if missing or not all(isinstance(d[k], str) for k in names):
            raise ValueError(f"provenance needs the string fields {sorted(names)} (missing: {missing})")
        return cls(**{k: d[k] for k in names})


def run_id(spec: RunSpec, provenance: Provenance) -> str:
    payload = json.dumps(
        {"spec": spec.to_json(), "engine_version": provenance.engine_version,
         "method_source": provenance.method_source, "dataset_source": provenance.dataset_source,
         "dataset_checksum": provenance.dataset_checksum, "protocols": provenance.protocols},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def record_path(results: Path, spec: RunSpec, rid: str) -> Path:
    return results / "runs" / f"{spec.row}__{spec.dataset}__{rid}.json"


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


class RecordError(ValueError):
    """A record file that is not a valid record: names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class RunRecord:
    """One run's record, validated. ``body`` keeps the whole JSON (epoch logs, extras, reliability bins)
    for the few readers that need more than the typed fields."""

    path: Path
    run_id: str
    spec: RunSpec
    status: str
    version: int
    provenance: Provenance | None  # None for version-1 records
    metrics: dict[str, dict[str, Any]]
    conditions: dict[str, dict[str, Any]]  # key -> resolved condition (protocol, args, family, severity, curve)
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def method(self) -> str:
        """The row label: a variant's label, else the method's name."""
        return self.spec.row

    @property
    def dataset(self) -> str:
        return dataset_label(self.spec)

    @property
    def error(self) -> dict[str, str]:
        return self.body.get("error") or {}

    def extra(self, *path: str) -> Any:
        """The value at ``path`` in the record's JSON (e.g. ``"extras", "gmm_fits"``), None where any key
        along it is missing: methods record different extras, and older records fewer of them."""
        value: Any = self.body
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    def stale_reason(self, hashes: SourceHashes) -> str:
        """Why this record no longer matches the code ('' when it does): an older record layout or engine
        version, or a method or loader whose source changed since the run."""
        if self.provenance is None:
            return f"record version {self.version} (before provenance was recorded)"
        p = self.provenance
        if p.engine_version != ENGINE_VERSION:
            return f"engine version {p.engine_version}, now {ENGINE_VERSION}"
        for what, file, source in (("method", p.method_file, p.method_source),
                                   ("dataset loader", p.dataset_file, p.dataset_source)):
            now = hashes.of(file, what)
            if now is None:
                return f"{what} file {file} no longer exists"
            if now != source:
                return f"{what} source {file} changed since the run"
        return ""


class SourceHashes:
    """Current source hashes of plug-in files, each file hashed once per rebuild (no import)."""

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def of(self, file: str, kind: str) -> str | None:
        """The hash of a ``method`` or ``dataset loader`` file with the blocks it imports."""
        if file not in self._cache:
            from benchmark.paths import datasets_dirs, methods_dirs
            from benchmark.sources import plugin_source_hash

            path = Path(file)
            if not path.is_absolute():
                builtin = BUILTIN_ROOT / file
                path = builtin if builtin.is_file() else REPO_ROOT / file
            dirs = methods_dirs() if kind == "method" else datasets_dirs()
            self._cache[file] = plugin_source_hash(path, dirs) if path.is_file() else None
        return self._cache[file]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_spec(d: Any) -> RunSpec:
    if not isinstance(d, dict):
        raise ValueError("no spec object")
    names = {f.name for f in fields(RunSpec)}
    unknown, missing = sorted(set(d) - names), sorted({"method", "dataset", "seed"} - set(d))
    if unknown or missing:
        raise ValueError(f"spec has unknown fields {unknown} or lacks {missing}")
    types = {"method": str, "dataset": str, "train_condition": str, "hparams": dict, "dataset_params": dict,
             "budget": dict, "test_conditions": list, "label": str}
    for key, kind in types.items():
        if key in d and not isinstance(d[key], kind):
            raise ValueError(f"spec.{key} should be a {kind.__name__}, got {d[key]!r}")
    for key in ("seed", "draw"):
        if key in d and (not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < 0):
            raise ValueError(f"spec.{key} should be a non-negative integer, got {d[key]!r}")
    if not all(isinstance(c, str) for c in d.get("test_conditions", [])):
        raise ValueError("spec.test_conditions should be a list of condition keys")
    return RunSpec.from_json(d)


def parse_record(body: Any, path: Path) -> RunRecord:
    """``body`` (a record file's JSON) as a RunRecord, or a RecordError naming ``path`` and what is wrong.
    A record is valid when its spec, status, run id (the file's, and for version-2 records the one its
    spec and provenance hash to) and its metrics or error hold together."""
    try:
        if not isinstance(body, dict):
            raise ValueError(f"a record is a JSON object, got {type(body).__name__}")
        spec = _check_spec(body.get("spec"))
        rid = body.get("run_id")
        if not isinstance(rid, str) or not _RUN_ID.match(rid):
            raise ValueError(f"run_id should be 20 hex digits, got {rid!r}")
        if path.suffix == ".json" and "__" in path.stem and path.stem.rsplit("__", 1)[1] != rid:
            raise ValueError(f"run_id {rid} is not the one in the file name ({path.name})")
        status = body.get("status")
        if status not in STATUSES:
            raise ValueError(f"status should be one of {list(STATUSES)}, got {status!r}")
        version = body.get("record_version", 1)
        provenance = None
        if version != 1:
            if version != RECORD_VERSION:
                raise ValueError(f"record_version {version!r} is not one this code reads (1 or {RECORD_VERSION})")
            provenance = Provenance.from_json(body.get("provenance") or {})
            if run_id(spec, provenance) != rid:
                raise ValueError(f"its spec and provenance hash to run id {run_id(spec, provenance)}, not {rid} "
                                 "(the file holds another run's record)")
        metrics = body.get("metrics") or {}
        conditions = body.get("conditions") or {}
        if status == "ok":
            if not isinstance(metrics, dict) or not spec.test_conditions:
                raise ValueError("an ok record needs its metrics and its spec's test conditions")
            try:
                valid = all(0 <= metrics[key]["accuracy"] <= 1 for key in spec.test_conditions)
            except (KeyError, TypeError):
                valid = False
            if not valid:
                bad = next(k for k in spec.test_conditions if not isinstance(metrics.get(k), dict)
                           or not _number(metrics[k].get("accuracy")) or not 0 <= metrics[k]["accuracy"] <= 1)
                raise ValueError(f"metrics of condition {bad!r} missing or without an accuracy in [0, 1]")
            if version != 1 and set(conditions) != set(spec.test_conditions):
                raise ValueError("its resolved conditions are not its spec's test conditions")
            timings = body.get("timings")
            if not isinstance(timings, dict) or not _number(timings.get("fit_seconds")):
                raise ValueError("an ok record needs timings.fit_seconds")
        else:
            err = body.get("error")
            if not isinstance(err, dict) or not isinstance(err.get("message"), str):
                raise ValueError("a failed record needs error.type and error.message")
    except (ValueError, TypeError) as exc:
        raise RecordError(path, str(exc)) from None
    return record_of_valid_body(body, path)


def record_of_valid_body(body: dict[str, Any], path: Path) -> RunRecord:
    """The RunRecord of a body that ``parse_record`` accepted (here, or in the process that read the file
    for this one, see benchmark.prefetch): built from it without checking it again."""
    spec = RunSpec.from_json(body["spec"])
    version = body.get("record_version", 1)
    provenance = None if version == 1 else Provenance.from_json(body.get("provenance") or {})
    metrics = body.get("metrics") or {}
    conditions = body.get("conditions") or {}
    if version == 1:
        conditions = {key: legacy_condition(key, metrics[key].get("family", ""), metrics[key].get("severity"))
                      for key in spec.test_conditions if key in metrics}
    return RunRecord(path, body["run_id"], spec, body["status"], version, provenance, metrics, conditions, body)


def load_record(path: Path) -> RunRecord:
    """The record at ``path``, validated; a RecordError names the file and the reason."""
    try:
        body = json.loads(path.read_text())
    except OSError as exc:
        raise RecordError(path, f"cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(path, f"is not valid JSON ({exc}); a write was probably cut short") from None
    return parse_record(body, path)


@functools.cache
def legacy_condition(key: str, family: str, severity: float | None) -> dict[str, Any]:
    """A version-1 record's condition, resolved from its key and stored family and severity: the curve is
    the protocol with its arguments other than the severity (the last argument equal to it)."""
    protocol, _, rest = key.partition("[")
    args = [a.strip() for a in rest[:-1].split(",")] if rest else []
    others = list(args)
    if severity is not None:
        for i in range(len(others) - 1, -1, -1):
            try:
                if math.isclose(float(others[i]), float(severity)):
                    del others[i]
                    break
            except ValueError:
                continue
    return {"protocol": protocol, "args": args, "family": family or protocol, "severity": severity,
            "curve": f"{protocol}[{','.join(others)}]", "version": None}
