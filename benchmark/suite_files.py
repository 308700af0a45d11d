"""Where suite files are: ``benchmark/suites/NAME.toml``, or any path to a ``.toml`` file. Kept apart from
``suites`` (which validates against the registry and the protocols) so that reading results back can name
a suite without importing either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).parent / "suites"


def available() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def suite_file(name_or_path: str) -> Path:
    """The TOML file of a suite name (``benchmark/suites/NAME.toml``) or a path to one."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if path.name != name_or_path or name_or_path in ("", ".", ".."):
            raise ValueError(f"--suite {name_or_path!r}: a suite is a name from `list suites` "
                             f"({', '.join(available())}) or a path ending in .toml")
        path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise FileNotFoundError(f"no suite {name_or_path!r}; known suites: {', '.join(available())} (or a .toml path)")
    return path


def noninferiority_margin(raw: dict[str, Any], path: Path) -> float:
    """The suite's ``noninferiority_margin`` (default 0.01), refused unless a fraction in [0, 0.5)."""
    value = raw.get("noninferiority_margin", 0.01)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 0.5:
        raise ValueError(f"{path}: noninferiority_margin must be a fraction in [0, 0.5) (0.01 = 1 point of "
                         f"accuracy), got {value!r}")
    return float(value)
