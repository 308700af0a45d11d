"""Plug-in discovery: methods and dataset loaders are found by scanning their folders (as benchopt finds
solvers), so contributing one is adding a file.

The folders are mounted as private packages (``benchmark.plugins_methods``, ``benchmark.plugins_datasets``)
rather than as top-level ``methods`` / ``datasets``: a top-level ``datasets`` would shadow Hugging Face's.
Files whose name starts with ``_`` are shared building blocks, not plug-ins.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from benchmark.contracts import Method
from benchmark.data import Dataset
from benchmark.paths import datasets_dirs, methods_dirs
from benchmark.sources import hash_files, package_blocks, used_blocks

METHODS_PACKAGE = "benchmark.plugins_methods"
DATASETS_PACKAGE = "benchmark.plugins_datasets"


@dataclass(frozen=True)
class Plugin:
    name: str
    cls: type
    path: Path
    source_hash: str  # the file plus the shared ``_*.py`` blocks it imports


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


def describe_import_error(exc: BaseException, path: Path) -> str:
    """``Type: message (line N)``: the line of ``path`` where importing it failed, for a fix without a traceback."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{type(exc).__name__}: {exc}" + (f" (line {line})" if line and not isinstance(exc, SyntaxError) else "")


#: Plug-in files that failed to import: path -> error. They are reported, and the others still work.
BROKEN: dict[str, str] = {}


def _scan(package: str, dirs: list[Path], base: type, kind: str) -> dict[str, Plugin]:
    _mount(package, dirs)
    found: dict[str, Plugin] = {}
    blocks = package_blocks(dirs)
    for d in dirs:
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{package}.{path.stem}")
            except Exception as exc:  # noqa: BLE001 - one broken plug-in must not hide the others
                BROKEN[str(path)] = describe_import_error(exc, path)
                continue
            for plugin in _plugins_in(module, base, path, blocks):
                if plugin.name in found:
                    raise ValueError(
                        f"{kind} name {plugin.name!r} is defined twice: in {found[plugin.name].path} and {path}; "
                        "rename one"
                    )
                found[plugin.name] = plugin
    return found


def _plugins_in(module: types.ModuleType, base: type, path: Path, blocks: list[Path]) -> list[Plugin]:
    """The plug-in classes a module defines (not those it imports): subclasses of ``base`` with a string
    ``name``, each hashed with its file and the shared blocks the file imports."""
    classes = [obj for obj in vars(module).values()
               if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
               and isinstance(getattr(obj, "name", None), str)]
    source = hash_files([path, *used_blocks(path, blocks)]) if classes else ""
    return [Plugin(obj.name, obj, path, source) for obj in classes]


#: Method files added from outside ``methods/`` (``--method-file``), in the order they were added.
METHOD_FILES: list[Path] = []


@cache
def methods() -> dict[str, Plugin]:
    found = _scan(METHODS_PACKAGE, methods_dirs(), Method, "method")
    for path in METHOD_FILES:
        for name, plugin in _load_file(path).items():
            if name in found and found[name].path != plugin.path:
                raise ValueError(f"method name {name!r} is defined twice: in {found[name].path} and {path}; rename one")
            found[name] = plugin
    return found


def add_method_file(path: Path) -> list[str]:
    """Register the methods of one file outside ``methods/`` without copying it in. The file joins the
    methods package, so its relative imports of the shared blocks (``from ._blocks import ...``) work."""
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise FileNotFoundError(f"method file {path} does not exist or is not a .py file")
    if path not in METHOD_FILES:
        METHOD_FILES.append(path)
        methods.cache_clear()
    return sorted(_load_file(path))


def _load_file(path: Path) -> dict[str, Plugin]:
    _mount(METHODS_PACKAGE, methods_dirs())
    modname = f"{METHODS_PACKAGE}.{path.stem}"
    module = sys.modules.get(modname)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            sys.modules.pop(modname, None)
            raise
    return {plugin.name: plugin for plugin in _plugins_in(module, Method, path, package_blocks(methods_dirs()))}


@cache
def datasets() -> dict[str, Plugin]:
    return _scan(DATASETS_PACKAGE, datasets_dirs(), Dataset, "dataset")


def get(kind: str, name: str) -> Plugin:
    table = methods() if kind == "method" else datasets()
    if name not in table:
        hint = "".join(f"\n  {p} failed to import: {e}" for p, e in BROKEN.items() if Path(p).stem == name)
        raise KeyError(f"no {kind} named {name!r}; known: {', '.join(sorted(table))}{hint}")
    return table[name]
