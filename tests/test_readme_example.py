"""The README's "Add a method" example works as written: dropped into a methods folder, it is found,
keeps the contract and runs in a suite."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, run_cli, write_suite


def readme_method_source() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(# methods/my_fusion.py\n.*?)```", text, re.S)
    assert block, "the README lost its 'Add a method' example"
    return block.group(1)


def test_readme_method_example_runs_in_a_suite(tmp_path: Path) -> None:
    folder = tmp_path / "extra_methods"
    folder.mkdir()
    # Extra folders join the methods/ package, so the example's relative import of _blocks resolves.
    (folder / "my_fusion.py").write_text(readme_method_source())
    suite = write_suite(tmp_path, ["my_fusion", "early_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   extra_env={"BENCHMARK_METHODS_PATH": str(folder)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| my_fusion |" in (tmp_path / "res" / "leaderboard.md").read_text()
