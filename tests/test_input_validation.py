"""Everything a user types is checked before anything trains: each wrong or hostile value of a suite key
or a flag is refused with a message naming it, its value and the fix, with no traceback and no run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, write_suite

from benchmark.suites import load_suite


@pytest.mark.parametrize(("line", "message"), [
    ("max_epochs = 0", "budget.max_epochs = 0: must be an integer >= 1"),
    ("batch_size = 0", "budget.batch_size"),
    ('lr = "fast"', "budget.lr = 'fast': must be a number > 0"),
    ("patience = -5", "budget.patience"),
    ("width = 0", "budget.width"),
    ("width = 2.5", "budget.width"),
])
def test_a_wrong_budget_value_is_refused(tmp_path: Path, line: str, message: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    key = line.split(" = ")[0]
    kept = [ln for ln in suite.read_text().splitlines() if not ln.startswith(f"{key} = ")]
    suite.write_text("\n".join(kept).replace("[budget]", f"[budget]\n{line}") + "\n")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_suite(str(suite))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("seeds = [0]", "seeds = [0.7]", "seeds must be a non-empty list of non-negative integers"),
    ("seeds = [0]", "seeds = [0, 0]", r"seed\(s\) \[0\] listed twice"),
    ("seeds = [0]", 'seeds = "0"', "seeds must be"),
    ('methods = ["early_fusion"]', 'methods = "early_fusion"', "methods must be \"all\" or a list"),
    ('datasets = ["synthetic_pid"]', 'datasets = "synthetic_pid"', "datasets must be \"all\" or a list"),
    ('datasets = ["synthetic_pid"]', 'datasets = ["no_such_data"]', "no dataset named"),
    ('name = "tiny"', 'name = "../../x"', "must be letters, digits"),
    ('test_conditions = ["clean"', 'test_conditions = ["clean", "no_protocol[1]"', "no test protocol"),
    ('name = "tiny"', 'name = "tiny"\nnoninferiority_margin = 1', "noninferiority_margin must be a fraction"),
    ('name = "tiny"', 'name = "tiny"\nnoninferiority_margin = "1 point"', "noninferiority_margin must be"),
    ('name = "tiny"', 'name = "tiny"\nnoninferiority_margin = -0.01', "noninferiority_margin must be"),
])
def test_a_wrong_suite_key_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    text = suite.read_text()
    assert old in text, old
    suite.write_text(text.replace(old, new))
    with pytest.raises((ValueError, KeyError), match=message):
        load_suite(str(suite))


def test_a_wrong_hyperparameter_override_is_refused(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    suite.write_text(suite.read_text() + '\n[hparams.early_fusion]\nmask_as_input = "maybe"\n')
    with pytest.raises(ValueError, match=r"\[hparams.early_fusion\].*mask_as_input"):
        load_suite(str(suite))


@pytest.mark.parametrize(("flags", "message"), [
    (["--workers", "0", "--backend", "dask"], "--workers 0: must be a positive integer"),
    (["--threads", "0"], "--threads 0: must be a positive integer"),
    (["--seeds", "a"], "--seeds 'a': 'a' is not a non-negative integer"),
    (["--seeds", "1,1"], "seed(s) [1] given twice"),
    (["--device", "meta"], "--device 'meta': runs train on cpu or cuda"),
    (["--device", "nonsense"], "--device 'nonsense': not a device"),
])
def test_a_wrong_flag_is_refused_before_anything_runs(tmp_path: Path, flags: list[str], message: str) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress", *flags)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "res").glob("runs/*.json"))


def test_a_results_path_that_is_a_file_or_unwritable_is_refused_before_training(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, ["early_fusion"])
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    done = run_cli("run", "--suite", str(suite), "--results", str(a_file), "--no-progress")
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr and "Traceback" not in done.stderr
    blocked = tmp_path / "blocked"  # its runs/ is a file: records cannot be written there (even by root)
    blocked.mkdir()
    (blocked / "runs").write_text("a file where the records folder should be")
    done = run_cli("run", "--suite", str(suite), "--results", str(blocked), "--no-progress")
    assert done.returncode == 2 and "cannot write records there" in done.stderr and "Traceback" not in done.stderr


def test_leaderboard_works_when_every_run_failed(tmp_path: Path) -> None:
    from conftest import TEST_PLUGINS

    suite = write_suite(tmp_path, ["raises_in_fit"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   "--skip-check", "--method-file", str(TEST_PLUGINS / "broken_methods.py"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    board = (tmp_path / "res" / "leaderboard.md").read_text()
    assert "## Failed runs" in board and "deliberate failure inside fit" in board


def test_a_method_that_edits_its_inputs_fails_alone_and_changes_no_other_run(tmp_path: Path) -> None:
    """Mutating methods swept beside honest ones, in one process: they are recorded failed with the reason,
    and the honest methods' records are identical to a sweep without them."""
    import json

    from conftest import TEST_PLUGINS

    hostile = str(TEST_PLUGINS / "hostile_methods.py")
    suite = write_suite(tmp_path, ["mutates_in_predict", "mutates_in_fit", "early_fusion", "late_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "with"), "--no-progress",
                   "--skip-check", "--method-file", hostile)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "predict_proba changed the inputs it was given" in done.stdout
    assert "fit changed the training or validation split" in done.stdout
    (tmp_path / "alone").mkdir()
    clean = write_suite(tmp_path / "alone", ["early_fusion", "late_fusion"])
    done = run_cli("run", "--suite", str(clean), "--results", str(tmp_path / "without"), "--no-progress")
    assert done.returncode == 0, done.stderr

    def honest(folder: Path) -> dict[str, dict]:
        out = {}
        for path in sorted((folder / "runs").glob("*.json")):
            body = json.loads(path.read_text())
            if body["spec"]["method"] in ("early_fusion", "late_fusion"):
                out[body["spec"]["method"]] = {k: body[k] for k in ("metrics", "input_sha256", "val_metrics")}
        return out

    assert honest(tmp_path / "with") == honest(tmp_path / "without")


def test_two_sweeps_on_one_folder_share_the_work_and_train_each_run_once(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    from conftest import REPO

    suite = write_suite(tmp_path, ["early_fusion", "late_fusion"], seeds=[0, 1, 2])
    cmd = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(tmp_path / "res"),
           "--no-progress", "--no-leaderboard"]
    env = {**os.environ}
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    done = [int(re.search(r"done (\d+)", out).group(1)) for out, _ in outs]
    assert sum(done) == 6, outs  # 2 methods x 3 seeds, each trained by exactly one of the two sweeps
    assert len(list((tmp_path / "res" / "runs").glob("*.json"))) == 6
    assert not list((tmp_path / "res" / "runs" / ".claims").glob("*.claim"))  # every claim released


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    import json
    import socket

    from benchmark.claims_files import claim, claim_path, release

    record = tmp_path / "runs" / "m__d__0123.json"
    path = claim_path(record)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345, "started": 0.0 + 1e10}))
    assert claim(record)  # the holder's process does not exist: taken over
    assert not claim(record)  # now held by this live process
    release(record)
    assert claim(record)


def test_a_method_file_that_fails_to_import_stops_run_and_check_method_names_its_line(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("import torch\n\nx = 1\nraise ImportError('this plug-in is broken')\n")
    suite = write_suite(tmp_path, ["early_fusion"])
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   extra_env={"BENCHMARK_METHODS_PATH": str(plugins)})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "broken.py: ImportError: this plug-in is broken (line 4)" in done.stderr
    assert not list((tmp_path / "res").glob("runs/*.json"))
    syntax = tmp_path / "syntax_error.py"
    syntax.write_text("def fit(self\n")
    done = run_cli("check-method", str(syntax))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "FAIL  import: SyntaxError" in done.stderr and "line 1" in done.stderr
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res2"), "--method-file", str(syntax))
    assert done.returncode == 2 and "--method-file" in done.stderr and "Traceback" not in done.stderr


def test_the_noninferiority_margin_is_read_by_the_suite_and_by_its_scope(tmp_path: Path) -> None:
    from benchmark.scope import suite_scope

    suite = write_suite(tmp_path, ["early_fusion"])
    assert load_suite(str(suite)).noninferiority_margin == suite_scope(str(suite)).noninferiority_margin == 0.01
    suite.write_text(suite.read_text().replace('name = "tiny"', 'name = "tiny"\nnoninferiority_margin = 0.025'))
    assert load_suite(str(suite)).noninferiority_margin == suite_scope(str(suite)).noninferiority_margin == 0.025
