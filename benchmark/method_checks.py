"""Only checked methods enter a board: before a sweep trains anything, every method it will run must have
passed ``check-method`` at its current source (the file and the shared blocks it imports). The verdict is
remembered per source hash (``paths.checks_dir``), so a method costs its checks once per change, and a
method that mutates its inputs, is nondeterministic, reads labels or returns invalid probabilities is
refused before it can reach a leaderboard. ``run --skip-check`` runs a method anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.paths import checks_dir
from benchmark.registry import Plugin

#: Bumped when the checks change, so every method is checked again against the new ones.
CHECKS_VERSION = 1
#: The child running a file's checks is ended after this many times the per-check limit.
CHILD_SECONDS_PER_CHECK = 10


@dataclass(frozen=True)
class Refusal:
    method: str
    path: Path
    check: str
    detail: str

    def message(self) -> str:
        return (f"method {self.method} ({self.path}) fails check-method's '{self.check}': {self.detail}. Fix it "
                f"(python -m benchmark check-method {self.path} runs every check), or run with --skip-check to "
                "train it anyway")


def verdict_path(plugin: Plugin) -> Path:
    return checks_dir() / f"{plugin.name}-{plugin.source_hash[:20]}-v{CHECKS_VERSION}.json"


def cached_verdict(plugin: Plugin) -> list[dict] | None:
    path = verdict_path(plugin)
    try:
        checks = json.loads(path.read_text())["checks"]
        return checks if isinstance(checks, list) and all(isinstance(c, dict) for c in checks) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # never checked here, or a damaged verdict: check again


def _check_in_child(path: Path, seconds: int) -> dict[str, list[dict]]:
    """``check-method`` on one file in a child process: a method that hangs, exits or crashes the
    interpreter while it is checked ends the child, not the sweep. Returns {method: checks}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "verdict.json"
        cmd = [sys.executable, "-m", "benchmark", "check-method", str(path), "--seconds", str(seconds),
               "--json-out", str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_SECONDS_PER_CHECK * seconds)
        except subprocess.TimeoutExpired:
            return {}
        if out.is_file():
            return json.loads(out.read_text())
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {"": [{"name": "check-method", "ok": False, "detail": f"the check process ended: {tail[0]}"}]}


def check_methods(plugins: list[Plugin], seconds: int = 120, say=print) -> list[Refusal]:
    """Check every plug-in not yet checked at its source (each file once, in a child process); return the
    refusals (remembered and new)."""
    refusals = []
    for plugin in plugins:
        checks = cached_verdict(plugin)
        if checks is None:
            say(f"checking method {plugin.name} (first run of this source; python -m benchmark check-method "
                f"{plugin.path} shows the details)")
            found = _check_in_child(plugin.path, seconds)
            checks = found.get(plugin.name) or found.get("") or [
                {"name": "check-method", "ok": False,
                 "detail": f"the checks did not finish within {CHILD_SECONDS_PER_CHECK * seconds} s"}]
            path = verdict_path(plugin)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"method": plugin.name, "path": str(plugin.path), "checks": checks}, indent=1))
            os.replace(tmp, path)
        refusals += [Refusal(plugin.name, plugin.path, c["name"], c["detail"]) for c in checks if not c["ok"]]
    return refusals
