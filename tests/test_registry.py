"""The registry finds plug-ins by file, and never takes the top-level names `methods` or `datasets`."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import run_cli, write_suite

from benchmark import registry


def test_registry_finds_every_method_and_dataset_file() -> None:
    assert {"early_fusion", "late_fusion"} <= set(registry.methods())
    assert {"synthetic_pid", "mfeat"} <= set(registry.datasets())
    assert "methods" not in sys.modules and "datasets" not in sys.modules


def test_adding_a_method_is_adding_a_file(tmp_path: Path) -> None:
    (tmp_path / "my_method.py").write_text(
        "from benchmark.contracts import Method\n"
        "import torch\n"
        "class Uniform(Method):\n"
        "    name = 'uniform_guess'\n"
        "    def fit(self, train, val, ctx): pass\n"
        "    def predict_proba(self, x, mask):\n"
        "        return torch.full((mask.shape[0], self.info.n_classes), 1.0 / self.info.n_classes)\n"
    )
    (tmp_path / "broken.py").write_text("raise ImportError('this plug-in is broken')\n")
    listed = run_cli("list", "methods", extra_env={"BENCHMARK_METHODS_PATH": str(tmp_path)})
    assert listed.returncode == 0
    assert "uniform_guess" in listed.stdout and "early_fusion" in listed.stdout
    assert "broken.py failed to import" in listed.stderr


def test_suite_works_while_an_unrelated_top_level_datasets_package_is_importable(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("HUGGING_FACE_LOOKALIKE = True\n")
    suite = write_suite(tmp_path, ["early_fusion"])
    env = {"PYTHONPATH": str(tmp_path / "site")}
    check = run_cli("list", "datasets", extra_env=env)
    assert check.returncode == 0 and "synthetic_pid" in check.stdout and "mfeat" in check.stdout
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress", extra_env=env)
    assert done.returncode == 0, done.stderr
    probe = (
        "import datasets, benchmark.registry as r; r.datasets(); r.methods(); "
        "import datasets as again; assert again.HUGGING_FACE_LOOKALIKE"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", probe], env={**__import__("os").environ, **env},
                         capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr


def test_a_methods_hash_covers_the_blocks_it_imports_and_no_others(tmp_path: Path) -> None:
    from benchmark.registry import used_blocks

    (tmp_path / "_base.py").write_text("X = 1\n")
    (tmp_path / "_helper.py").write_text("from ._base import X\n")
    (tmp_path / "_unrelated.py").write_text("Y = 2\n")
    method = tmp_path / "m.py"
    method.write_text("from ._helper import X\n")
    blocks = sorted(tmp_path.glob("_*.py"))
    assert [b.name for b in used_blocks(method, blocks)] == ["_base.py", "_helper.py"]  # transitive, not unrelated


def test_conformal_shapleys_hash_covers_its_math_blocks() -> None:
    from benchmark.registry import used_blocks

    path = registry.get("method", "conformal_shapley").path
    blocks = sorted(path.parent.glob("_*.py"))
    assert [b.name for b in used_blocks(path, blocks)] == ["_blocks.py", "_coalitions.py", "_conformal.py",
                                                          "_shapley.py"]


def test_two_plugins_with_one_name_stop_with_both_files_named(tmp_path: Path) -> None:
    body = ("from benchmark.contracts import Method\n"
            "class Again(Method):\n"
            "    name = 'early_fusion'\n"
            "    def fit(self, train, val, ctx): pass\n"
            "    def predict_proba(self, x, mask): pass\n")
    (tmp_path / "again.py").write_text(body)
    listed = run_cli("list", "methods", extra_env={"BENCHMARK_METHODS_PATH": str(tmp_path)})
    assert listed.returncode == 2
    assert "method name 'early_fusion' is defined twice" in listed.stderr
    assert "early_fusion.py" in listed.stderr and "again.py" in listed.stderr and "rename one" in listed.stderr
