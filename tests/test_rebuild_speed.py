"""What makes a rebuild fast changes no number: records read by the forked reader load as a plain read
loads them, per-group reductions are numpy's on each group alone, bit for bit, the pairwise tests are
scipy's and statsmodels' per block, bit for bit, and a background process hands back its value or its
exception."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from benchmark.grouped import Grouped
from benchmark.prefetch import RecordPrefetch, _packed
from benchmark.report.background import Background
from benchmark.results import load, suite_scope, table_of
from benchmark.rows import gather
from benchmark.statistics import mean_interval, mean_intervals, pairwise_tests


def _same_results(a, b) -> None:
    assert [r.path for r in a.records] == [r.path for r in b.records]
    assert [json.dumps(r.body, sort_keys=True) for r in a.records] == [json.dumps(r.body, sort_keys=True)
                                                                       for r in b.records]
    assert [str(p) for p in a.problems] == [str(p) for p in b.problems]
    assert (a.stale, a.other, a.superseded) == (b.stale, b.other, b.superseded)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)


def test_a_prefetched_load_is_a_plain_load(runner_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(runner_folder, folder)
    good = sorted((folder / "runs").glob("early_fusion__*.json"))[0]
    (folder / "runs" / "truncated__x__0123456789abcdef0123.json").write_text(good.read_text()[:300])
    scope = suite_scope(str(folder / "runner.toml"), folder)
    plain = load(folder, scope)
    assert plain.problems and plain.records
    _same_results(load(folder, scope, RecordPrefetch(folder, scope)), plain)
    _same_results(load(folder, scope, RecordPrefetch(folder)), plain)  # no scope: the table made here
    # A file the reader did not see (written after it started) is read by the loading process.
    prefetch = RecordPrefetch(folder, scope)
    rid = json.loads(good.read_text())["run_id"]
    (folder / "runs" / f"zz_copy__x__{rid}.json").write_text(good.read_text())  # the same run, recorded twice
    _same_results(load(folder, scope, prefetch), load(folder, scope))


def test_packed_rows_make_the_same_table(runner_results) -> None:
    parts = gather(runner_results.records, runner_results.stale)
    pd.testing.assert_frame_equal(table_of(_packed(parts)), table_of(parts), check_exact=True)
    parts["values"][0] = None  # a metric recorded as null: sent as the list it is, read as NaN
    assert isinstance(_packed(parts)["values"], list) and math.isnan(table_of(_packed(parts))["value"][0])


def test_grouped_reductions_are_numpys_on_each_group_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(0, 40, 300)
    codes = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    values = rng.random(len(codes)) * 10.0 ** rng.integers(-3, 4, len(codes))
    grouped = Grouped(codes, len(sizes))
    mean = grouped.mean(values)
    std = grouped.reduce(values, lambda m: m.std(axis=1, ddof=1) if m.shape[1] > 1 else np.full(len(m), np.nan))
    for g in range(len(sizes)):
        part = values[codes == g]  # the group's elements in their order
        if len(part) == 0:
            assert math.isnan(mean[g])
            continue
        assert mean[g] == np.mean(part)
        assert (math.isnan(std[g]) and len(part) < 2) or std[g] == np.std(part, ddof=1)
    values[rng.random(len(values)) < 0.1] = np.nan
    means, lows, highs = mean_intervals(values, codes, len(sizes))
    for g in range(len(sizes)):
        expected = mean_interval(values[codes == g])
        assert np.array_equal([means[g], lows[g], highs[g]], expected, equal_nan=True)


def _pairwise_reference(table: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Each block alone, with scipy's paired t-test and statsmodels' Holm correction."""
    rows = []
    for (dataset, cond, fam), part in table.groupby(["dataset", "train_condition", "family"], sort=True):
        by: dict[str, dict] = {}
        for m, seed, acc in zip(part["method"], part["seed"], part["accuracy"], strict=True):
            by.setdefault(m, {})[seed] = float(acc)
        means = {m: float(np.sum(list(v.values())) / len(v)) for m, v in sorted(by.items())}
        best = max(sorted(means), key=means.get)
        for kind, ref in (("best", best), ("baseline", baseline)):
            if ref not in by:
                continue
            block = []
            for m, a in sorted(by.items()):
                if m == ref:
                    continue
                common = [s for s in a if s in by[ref]]
                x, y = np.array([a[s] for s in common]), np.array([by[ref][s] for s in common])
                d = x - y
                row = {"dataset": dataset, "train_condition": cond, "family": fam, "method": m, "reference": kind,
                       "reference_method": ref, "n_pairs": len(d), "mean_diff": d.mean() if len(d) else math.nan}
                if len(d) < 2 or np.allclose(d, d[0]):
                    row.update(p=1.0 if len(d) < 2 or d[0] == 0 else 0.0, d_z=math.nan, ci_low=row["mean_diff"],
                               ci_high=row["mean_diff"])
                else:
                    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
                    row.update(p=stats.ttest_rel(x, y).pvalue, d_z=d.mean() / d.std(ddof=1), ci_low=lo, ci_high=hi)
                block.append(row)
            if block:
                for row, p in zip(block, multipletests([r["p"] for r in block], method="holm")[1], strict=True):
                    row.update(p_holm=p, significant=bool(p < 0.05))
                rows += block
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(6))
def test_pairwise_tests_are_the_libraries_per_block_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(3):
        for fam in ("clean", "missing"):
            for m in ["a", "base", "c", "d"][: rng.integers(2, 5)]:
                for s in range(rng.integers(1, 7)):
                    if rng.random() < 0.15:
                        continue  # a missing seed
                    acc = float(np.round(rng.random(), rng.integers(1, 4)))  # ties and constant gaps
                    rows.append({"dataset": f"d{d}", "train_condition": "standard", "method": m, "seed": s,
                                 "family": fam, "accuracy": acc})
    table = pd.DataFrame(rows).sample(frac=1, random_state=seed)
    got, expected = pairwise_tests(table, "base"), _pairwise_reference(table, "base")
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)


def _fails() -> None:
    raise ValueError("from the child")


def test_background_returns_the_childs_value_or_raises_its_exception() -> None:
    assert Background(sum, [1, 2, 3]).result() == 6
    with pytest.raises(ValueError, match="from the child") as caught:
        Background(_fails).result()
    assert any("in a background process" in note for note in getattr(caught.value, "__notes__", []))


def test_a_rebuilds_own_process_imports_neither_scipy_stats_nor_statsmodels(runner_folder: Path,
                                                                              tmp_path: Path) -> None:
    """The statistics process imports them meanwhile (benchmark.report.stats_side); the pages are whole."""
    import subprocess
    import sys

    folder = tmp_path / "r"
    shutil.copytree(runner_folder, folder)
    code = ("import sys; from benchmark.cli import main; "
            f"main(['leaderboard', '--suite', {str(folder / 'runner.toml')!r}, '--results', {str(folder)!r}]); "
            "print(sorted(m for m in ('scipy.stats', 'statsmodels', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "## Per dataset" in (folder / "statistics.md").read_text()


def test_the_statistics_process_writes_what_this_process_would(runner_folder: Path, tmp_path: Path) -> None:
    from benchmark.report.stats_side import StatsSide
    from benchmark.report.write import write_reports

    results = load(runner_folder, suite_scope(str(runner_folder / "runner.toml"), runner_folder))
    pages = {}
    for how, side in (("forked", StatsSide.start()), ("here", StatsSide())):
        out = tmp_path / how
        write_reports(results, out, "runner", "late_fusion", side=side)
        pages[how] = {p.name: p.read_bytes() for p in sorted(out.glob("*.*"))}
    assert pages["forked"].keys() == pages["here"].keys() >= {"statistics.md", "leaderboard.md", "leaderboard.csv"}
    assert pages["forked"] == pages["here"]


def test_a_failure_in_the_statistics_process_is_raised_here_with_its_traceback(tmp_path: Path) -> None:
    from benchmark.report.stats_side import StatsRequest, StatsSide

    side = StatsSide.start()
    side.submit(StatsRequest(None, None, [], "late_fusion", tmp_path, 0.01))  # no table: the child fails
    with pytest.raises(Exception) as err:  # noqa: PT011 - whatever the child raised, raised again here
        side.marks()
    assert "in the statistics process of the rebuild" in "\n".join(getattr(err.value, "__notes__", []))
    side.close()
