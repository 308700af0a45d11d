"""The README's "Submit a method" walkthrough works as written: the template it shows is the shipped
file, passes check-method, and runs and is ranked from a file outside methods/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import REPO, run_cli, write_suite

TEMPLATE = REPO / "benchmark" / "templates" / "my_fusion.py"


def test_readme_shows_the_shipped_template() -> None:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Submit a method.*?```python\n(.*?)```", text, re.S)
    assert block and block.group(1) == TEMPLATE.read_text()
    assert "cp benchmark/templates/my_fusion.py methods/my_fusion.py" in text


def test_template_passes_check_method_and_is_ranked(tmp_path: Path) -> None:
    path = tmp_path / "my_fusion.py"
    shutil.copy(TEMPLATE, path)
    checked = run_cli("check-method", str(path))
    assert checked.returncode == 0 and "FAIL" not in checked.stdout, checked.stdout + checked.stderr
    suite = write_suite(tmp_path, ["my_fusion", "early_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   "--method-file", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| my_fusion |" in (tmp_path / "res" / "leaderboard.md").read_text()
    assert "my_fusion" in (tmp_path / "res" / "statistics.md").read_text()
