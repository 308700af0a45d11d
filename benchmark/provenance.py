"""datalad and git-annex plumbing: the prepared-data store is a datalad dataset, and leaderboard
regeneration can be recorded with ``datalad run`` so that ``datalad rerun`` reproduces it.

git-annex comes from the PyPI package ``git-annex``, whose binary sits beside the interpreter; a machine
without a git identity gets one for this process only (global git config is never touched)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "robust-mm-bench", "GIT_AUTHOR_EMAIL": "robust-mm-bench@localhost",
            "GIT_COMMITTER_NAME": "robust-mm-bench", "GIT_COMMITTER_EMAIL": "robust-mm-bench@localhost"}


def prepare_environment() -> None:
    """git-annex on PATH (the venv's bin) and a git identity for this process where none is set."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    for var, config in (("NAME", "user.name"), ("EMAIL", "user.email")):
        have = subprocess.run(["git", "config", config], capture_output=True, text=True).stdout.strip()
        if not have:
            for role in ("AUTHOR", "COMMITTER"):
                os.environ.setdefault(f"GIT_{role}_{var}", IDENTITY[f"GIT_{role}_{var}"])


def enabled() -> bool:
    """``BENCHMARK_DATALAD=0`` keeps the store a plain folder (for machines without git-annex)."""
    return os.environ.get("BENCHMARK_DATALAD", "1") != "0"


def ensure_store(root: Path) -> None:
    """Make ``root`` a datalad dataset (text in git, binaries in the annex) if it is not one yet."""
    if (root / ".datalad" / "config").exists():
        return
    prepare_environment()
    import datalad.api as dl

    root.mkdir(parents=True, exist_ok=True)
    dl.create(path=str(root), force=True, cfg_proc="text2git", result_renderer="disabled")
    ignore = root / ".gitignore"
    ignore.write_text("# downloaded sources and the lock file are not part of the store's history\nsources/\n"
                      ".prepare.lock\n*.tmp.npz\n")
    save(root, [ignore], "ignore downloaded sources and lock files")


def save(root: Path, paths: list[Path], message: str) -> None:
    prepare_environment()
    import datalad.api as dl

    dl.save(dataset=str(root), path=[str(p) for p in paths], message=message, result_renderer="disabled")


def forget_annexed(path: Path) -> None:
    """Before a rebuild: remove the annexed object behind ``path`` as well as the link. git-annex keys
    objects by content, so a damaged object would otherwise be reused for the rebuilt, identical file."""
    if not path.is_symlink():
        path.unlink(missing_ok=True)
        return
    target = path.resolve()
    path.unlink()
    if ".git/annex/objects" in str(target) and target.exists():
        os.chmod(target.parent, 0o755)
        target.unlink()


def dataset_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that is a datalad dataset."""
    for candidate in [path.resolve(), *path.resolve().parents]:
        if (candidate / ".datalad" / "config").exists():
            return candidate
    return None


def record_leaderboard(suite: str, results: Path) -> str:
    """Regenerate the leaderboard under ``datalad run`` (the dataset must be clean); returns the commit."""
    root = dataset_root(results)
    if root is None:
        raise ValueError(f"{results} is not inside a datalad dataset; make its top folder one with "
                         f"`datalad create --force --no-annex <folder>` and commit, then run this again")
    prepare_environment()
    rel = os.path.relpath(results.resolve(), root)
    outputs = [os.path.join(rel, "leaderboard.md"), os.path.join(rel, "leaderboard.csv")]
    # Run from the dataset's root so that the recorded command and paths are relative to it.
    cmd = ["datalad", "run", "-m", f"Rebuild the {suite} leaderboard from {rel}/runs",
           *(a for o in outputs for a in ("-o", o)), f"python -m benchmark leaderboard --suite {suite} --results {rel}"]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"datalad run failed in {root} (is the dataset clean? commit first):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
