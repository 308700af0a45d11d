"""It installs like a package (issue 23, point 3): the wheel holds the built-in methods, datasets, suites,
templates and figure scripts; installed, ``mmbench`` works from an empty folder and writes its results
there, never inside site-packages.

The venv here is fresh but borrows the shared environment's third-party packages (a ``.pth`` line naming
the shared site-packages, after the venv's own): installing the whole lock takes ~2.5 min on this machine,
past a test's budget. The shared site-packages' own ``.pth`` files (the editable install of the checkout)
are not processed, so ``benchmark`` can only come from the wheel; the test checks that it does. CI's
``.ci/run`` installs the lock into a truly fresh venv and runs the same smoke suite."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


def _tracked(*folders: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *folders], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tracked files (the checkout itself is left untouched)."""
    src = tmp_path_factory.mktemp("src")
    for f in _tracked():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(out.glob("*.whl"))


def test_wheel_holds_every_source_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f for f in _tracked("benchmark") if not f.endswith((".pyc",))}
    wanted |= {f"benchmark/_builtin/{f}" for f in _tracked("methods", "datasets", "paper_figures") if f.endswith(".py")}
    assert wanted - names == set()
    assert not any(n.endswith((".png", ".pdf", ".json")) for n in names)  # no figures or records ride along


def test_installed_copy_runs_the_smoke_suite_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    own = next(venv.glob("lib/python*/site-packages"))
    (own / "shared.pth").write_text(site.getsitepackages()[0] + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "empty"
    work.mkdir()
    # git-annex is an executable of the shared environment: its bin folder goes after the venv's
    path = os.pathsep.join([str(venv / "bin"), os.environ["PATH"], os.path.dirname(sys.executable)])
    env = {**os.environ, "PATH": path}
    env.pop("PYTHONPATH", None)

    def mmbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "mmbench"), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import benchmark.paths as p; "
                            "print(p.PACKAGE_DIR, p.INSTALLED, p.REPO_ROOT, *p.methods_dirs())"], cwd=work, env=env,
                           capture_output=True, text=True)
    package, installed, root, methods = where.stdout.split()
    assert Path(package).is_relative_to(own) and installed == "True" and Path(root) == work.resolve()
    assert Path(methods) == Path(package) / "_builtin" / "methods"
    listed = mmbench("list", "methods")
    assert "early_fusion (early_fusion.py)" in listed.stdout and "robult (robult.py)" in listed.stdout, listed.stderr
    assert "smoke" in mmbench("list", "suites").stdout
    before = sorted(p for p in own.rglob("*") if "__pycache__" not in p.parts)
    done = mmbench("run", "--suite", "smoke", "--skip-check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done 7, skipped 0" in done.stdout
    assert len(list((work / "results" / "smoke" / "runs").glob("*.json"))) == 7
    assert (work / "results" / "smoke" / "leaderboard.html").is_file()
    assert sorted(p for p in own.rglob("*") if "__pycache__" not in p.parts) == before  # nothing written there
    assert "leaderboard of 7 record(s) (0 stale, 0 failed)" in done.stderr  # the installed sources re-hash alike
    copied = mmbench("template", "method")
    assert copied.returncode == 0 and (work / "methods" / "my_fusion.py").is_file()
    assert "my_fusion (my_fusion.py)" in mmbench("list", "methods").stdout  # the project's own plug-in folder
