"""Source hashes of plug-in files, computed from the files alone (no import), so that a rebuild can tell
whether a record's method or loader has changed since it ran without importing torch or the plug-in."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_IMPORT = re.compile(r"(?:from\s+(?:\.|benchmark\.plugins_\w+\.)|import\s+benchmark\.plugins_\w+\.)(_\w+)")


def used_blocks(path: Path, blocks: list[Path]) -> list[Path]:
    """The shared ``_*.py`` blocks a plug-in imports, directly or through another block: only those are
    part of its source hash, so adding or editing an unrelated block leaves its records valid."""
    by_stem = {b.stem: b for b in blocks}
    seen: dict[str, Path] = {}
    todo = [path]
    while todo:
        for stem in _IMPORT.findall(todo.pop().read_text()):
            if stem in by_stem and stem not in seen:
                seen[stem] = by_stem[stem]
                todo.append(by_stem[stem])
    return [seen[k] for k in sorted(seen)]


def hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def package_blocks(dirs: list[Path]) -> list[Path]:
    """The shared blocks a plug-in's relative import can reach: ``_*.py`` of the package's folders, the
    first folder holding a name winning, as the import system resolves ``from ._name import ...``."""
    found: dict[str, Path] = {}
    for d in dirs:
        for block in sorted(d.glob("_*.py")):
            found.setdefault(block.stem, block)
    return [found[k] for k in sorted(found)]


def plugin_source_hash(path: Path, dirs: list[Path]) -> str:
    """A plug-in file's hash with the shared blocks it imports from its package's folders ``dirs``."""
    return hash_files([path, *used_blocks(path, package_blocks(dirs))])
