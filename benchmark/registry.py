"""Plug-in discovery: methods and dataset loaders are found by scanning their folders (as benchopt finds
solvers), so contributing one is adding a file.

The folders are mounted as private packages (``benchmark.plugins_methods``, ``benchmark.plugins_datasets``)
rather than as top-level ``methods`` / ``datasets``: a top-level ``datasets`` would shadow Hugging Face's.
Files whose name starts with ``_`` are shared building blocks, not plug-ins.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from benchmark.contracts import Method
from benchmark.data import Dataset
from benchmark.paths import datasets_dirs, methods_dirs

METHODS_PACKAGE = "benchmark.plugins_methods"
DATASETS_PACKAGE = "benchmark.plugins_datasets"


@dataclass(frozen=True)
class Plugin:
    name: str
    cls: type
    path: Path
    source_hash: str  # the file plus the folder's shared ``_*.py`` blocks


def _mount(package: str, dirs: list[Path]) -> None:
    mod = sys.modules.get(package)
    paths = [str(d) for d in dirs if d.is_dir()]
    if mod is None:
        mod = types.ModuleType(package)
        mod.__path__ = paths  # type: ignore[attr-defined]
        mod.__package__ = package
        sys.modules[package] = mod
    else:
        mod.__path__[:] = paths  # type: ignore[index]


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


#: Plug-in files that failed to import: path -> error. They are reported, and the others still work.
BROKEN: dict[str, str] = {}


def _scan(package: str, dirs: list[Path], base: type, kind: str) -> dict[str, Plugin]:
    _mount(package, dirs)
    found: dict[str, Plugin] = {}
    for d in dirs:
        blocks = sorted(d.glob("_*.py"))
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{package}.{path.stem}")
            except Exception as exc:  # noqa: BLE001 - one broken plug-in must not hide the others
                BROKEN[str(path)] = f"{type(exc).__name__}: {exc}"
                continue
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, base)
                    and obj.__module__ == module.__name__
                    and isinstance(getattr(obj, "name", None), str)
                ):
                    if obj.name in found:
                        raise ValueError(
                            f"{kind} name {obj.name!r} is defined twice: in {found[obj.name].path} and {path}; "
                            "rename one"
                        )
                    found[obj.name] = Plugin(obj.name, obj, path, _hash_files([path, *blocks]))
    return found


@cache
def methods() -> dict[str, Plugin]:
    return _scan(METHODS_PACKAGE, methods_dirs(), Method, "method")


@cache
def datasets() -> dict[str, Plugin]:
    return _scan(DATASETS_PACKAGE, datasets_dirs(), Dataset, "dataset")


def get(kind: str, name: str) -> Plugin:
    table = methods() if kind == "method" else datasets()
    if name not in table:
        hint = "".join(f"\n  {p} failed to import: {e}" for p, e in BROKEN.items() if Path(p).stem == name)
        raise KeyError(f"no {kind} named {name!r}; known: {', '.join(sorted(table))}{hint}")
    return table[name]
