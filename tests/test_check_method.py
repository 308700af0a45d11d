"""check-method rejects each kind of broken method with a clear message, and passes a good one."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, run_cli

HEADER = '''
import torch
from benchmark.contracts import Method


class Broken(Method):
    name = "{name}"

    def fit(self, train, val, ctx):
        {fit}

    def predict_proba(self, x, mask):
        {predict}
'''
UNIFORM = "return torch.full((mask.shape[0], self.info.n_classes), 1.0 / self.info.n_classes)"
CASES = {
    "reads_beyond_mask": ("pass", "s = sum(v.reshape(len(v), -1).sum(1) for v in x.values())\n        return "
                          "torch.softmax(torch.stack([s, -s], 1).repeat(1, 2)[:, :self.info.n_classes], 1)",
                          "invariance to values behind the mask", "changed by"),
    "bad_sums": ("pass", "return torch.full((mask.shape[0], self.info.n_classes), 0.5)",
                 "valid probabilities", "sum to 1"),
    "not_deterministic": ("import time; self.bias = float(time.perf_counter_ns() % 1000)",
                          "p = torch.ones(mask.shape[0], self.info.n_classes)\n        p[:, 0] += self.bias\n"
                          "        return p / p.sum(1, keepdim=True)",
                          "determinism given the seed", "two fits with seed 0 differ"),
    "raises": ("raise RuntimeError('boom in fit')", UNIFORM, "smoke run", "RuntimeError: boom in fit"),
    "mutates_in_predict": ("pass", "x[next(iter(x))].mul_(0)\n        " + UNIFORM, "inputs left as they were",
                           "predict_proba changed the inputs"),
    "mutates_mask": ("pass", "mask[:, 0] = False\n        " + UNIFORM, "inputs left as they were",
                     "predict_proba changed the inputs"),
    "mutates_in_fit": ("train.y.zero_()", UNIFORM, "inputs left as they were", "fit changed the training"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_method_rejects_each_broken_method_with_a_clear_message(case: str, tmp_path: Path) -> None:
    fit, predict, check, message = CASES[case]
    path = tmp_path / f"{case}.py"
    path.write_text(HEADER.format(name=case, fit=fit, predict=predict))
    done = run_cli("check-method", str(path), "--seconds", "60")
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(ln for ln in done.stdout.splitlines() if check in ln)
    assert line.strip().startswith("FAIL") and message in line, done.stdout


def test_check_method_passes_a_shipped_method_and_a_file_outside_methods(tmp_path: Path) -> None:
    done = run_cli("check-method", str(REPO / "methods" / "early_fusion.py"))
    assert done.returncode == 0 and done.stdout.strip().endswith("conformant"), done.stdout
    path = tmp_path / "uniform_outside.py"
    path.write_text(HEADER.format(name="uniform_outside", fit="pass", predict=UNIFORM))
    assert run_cli("check-method", str(path)).returncode == 0


def test_a_method_file_outside_methods_is_run_and_ranked(tmp_path: Path) -> None:
    from conftest import write_suite

    path = tmp_path / "uniform_outside.py"
    path.write_text(HEADER.format(name="uniform_outside", fit="pass", predict=UNIFORM))
    suite = write_suite(tmp_path, ["early_fusion", "uniform_outside"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--method-file", str(path),
                   "--no-progress")
    assert done.returncode == 0, done.stderr
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "| uniform_outside |" in board and "| early_fusion |" in board
