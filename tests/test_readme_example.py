"""Every command the README shows is run here (issue 23, point 4), as follows:

- run for real, in an empty folder with this checkout's package: ``--version``, ``list ...``,
  ``template ...`` (then ``check-method`` on the copied method and ``list datasets`` / an import and
  application of the copied protocol), the ``load_results`` Python block, ``run --suite smoke --dry-run``;
- ``run`` of a bigger suite (``quick``, and with ``--backend dask``): ``--dry-run`` appended (plans
  every run, trains nothing);
- the ones that train or prepare for hours (``--suite full``, ``prepare`` of every dataset), ``export``
  of the full suite and the two set-up commands: parsed by the real argument parser only; the set-up
  commands' files must exist, and the test command is what CI runs verbatim (``.ci/run``).

Also: the template the README shows is the shipped file, and it passes check-method and is ranked."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli, write_suite

TEMPLATE = REPO / "benchmark" / "templates" / "my_fusion.py"
README = (REPO / "README.md").read_text()
#: A README command that trains for hours or prepares every dataset: parsed only.
PARSE_ONLY = ("--suite full", "prepare", "export", "--scheduler", "leaderboard")


def readme_commands() -> list[str]:
    """Every command of the README's bash blocks and inline code that invokes the tool, split at ``&&``."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    inline = re.findall(r"`((?:python -m benchmark|mmbench|\.venv/bin/python -m benchmark) [^`]*)`", README)
    out = []
    for text in [*blocks, *(" ".join(i.split()) for i in inline)]:
        for line in text.strip().splitlines():
            out += [part.strip() for part in line.split("&&")]
    return [c for c in out if c]


def _tool_args(command: str) -> list[str] | None:
    words = shlex.split(command)
    for prefix in (["mmbench"], ["python", "-m", "benchmark"], [".venv/bin/python", "-m", "benchmark"]):
        if words[: len(prefix)] == prefix:
            return words[len(prefix):]
    return None


def test_first_screen_is_the_two_commands_and_the_output() -> None:
    head = README.split("## Leaderboard", 1)[0]
    assert len(head.splitlines()) <= 40  # one screen
    commands = re.findall(r"```bash\n(.*?)```", head, re.S)
    assert [c.strip().endswith(end) for c, end in zip(commands, ("run --suite quick", "-m pytest"), strict=True)]
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1].strip() in ci  # CI runs the README's test command verbatim
    assert "```\n[42/42]" in head and "best per dataset" in head  # what the quick command prints
    for part in commands[0].split("&&") + commands[1].split("&&"):
        for file in re.findall(r"-r (\S+)", part):
            assert (REPO / file).is_file()


def test_the_leaderboard_block_is_kept() -> None:
    assert README.count("<!-- leaderboard:start -->") == 1 and README.count("<!-- leaderboard:end -->") == 1
    assert "### Summary (training: standard)" in README.split("<!-- leaderboard:start -->", 1)[1]


def test_every_tool_command_parses() -> None:
    from benchmark.cli import build_parser

    commands = [a for a in map(_tool_args, readme_commands()) if a is not None]
    assert len(commands) >= 10
    for args in commands:
        if args == ["--version"]:
            continue
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"README command does not parse: {args} ({exc})")


def _in_empty_folder(args: list[str], folder: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_every_cheap_command_runs(tmp_path: Path) -> None:
    ran = []
    for command in readme_commands():
        args = _tool_args(command)
        if args is None or any(p in command for p in PARSE_ONLY):
            continue
        if args[0] == "run" and "--dry-run" not in args:
            args = [*args, "--dry-run"]
        if args[0] == "run":
            args = [*args, "--results", str(tmp_path / "res" / str(len(ran)))]
        if args[0] == "check-method" and not (tmp_path / args[1]).exists():
            continue  # a path of the walkthrough that exists only after the template step: run below
        done = _in_empty_folder(args, tmp_path)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        ran.append(command)
    assert (tmp_path / "datasets" / "my_dataset.py").is_file() and (tmp_path / "my_protocol.py").is_file()
    assert any("template method" in c for c in ran) and (tmp_path / "methods" / "my_fusion.py").is_file()
    assert any(c.startswith("python -m benchmark check-method methods/my_fusion.py") for c in ran)
    # The README runs `list datasets` in the checkout; in a folder on BENCHMARK_DATASETS_PATH the template joins:
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCHMARK_DATASETS_PATH": str(tmp_path / "datasets")}
    listed = subprocess.run([sys.executable, "-m", "benchmark", "list", "datasets"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert "my_dataset (" in listed.stdout, listed.stderr


def test_the_python_block_runs() -> None:
    code = re.search(r"## Load results into pandas.*?```python\n(.*?)```", README, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "[70 rows x 8 columns]" in done.stdout, done.stderr  # 10 rows x 7 datasets


def test_protocol_template_is_a_valid_keyed_protocol() -> None:
    import importlib.util

    import torch
    from helpers import toy_info, toy_split

    from benchmark.protocols.base import Protocol

    spec = importlib.util.spec_from_file_location("my_protocol", REPO / "benchmark" / "templates" / "my_protocol.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    proto = module.Dropout()
    assert isinstance(proto, Protocol)
    split = toy_split(50)
    args = proto.validate(("a", 0.5), toy_info())
    once, again = proto.apply(split, args, 0), proto.apply(split, args, 0)
    assert torch.equal(once.x["a"], again.x["a"]) and not torch.equal(once.x["a"], proto.apply(split, args, 1).x["a"])
    dropped = (once.x["a"] == 0) & (split.x["a"] != 0)
    assert 0.3 < dropped.float().mean().item() < 0.7 and torch.equal(once.x["b"], split.x["b"])
    # keyed on the sample id: a sample's draw does not depend on which other samples are in the split
    part = proto.apply(split.subset(torch.arange(10, 30)), args, 0)
    assert torch.equal(part.x["a"], once.x["a"][10:30])


def test_readme_shows_the_shipped_template() -> None:
    block = re.search(r"## Submit a method.*?```python\n(.*?)```", README, re.S)
    assert block and block.group(1) == TEMPLATE.read_text()
    assert "cp benchmark/templates/my_fusion.py methods/my_fusion.py" in README


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
