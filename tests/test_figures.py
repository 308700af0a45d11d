"""Every paper figure renders from a small results fixture, and its content is what it claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from benchmark import figures
from benchmark.registry import methods

FIXTURE_SUITE = """
name = "figure_fixture"
description = "every method, tiny, two seeds, two training conditions"
methods = "all"
seeds = [0, 1]
training_conditions = ["standard", "labels[0.5]"]
test_conditions = ["clean", "missing_modality[*]", "random_missing[0.3]", "random_missing[0.6]",
                   "missing_pattern[*]", "gaussian_noise[m0,1]", "gaussian_noise[m0,3]", "mean_shift[m0,2]",
                   "correlation_shift[m1,any_class]"]
datasets = [{{name = "synthetic_pid", n = 300{extra}}}]

[budget]
max_epochs = 3
patience = 2
width = 16
"""


def _run(folder: Path, extra: str = "", only: str | None = None) -> list[dict]:
    suite = folder / "suite.toml"
    text = FIXTURE_SUITE.format(extra=extra)
    if only:
        text = text.replace('methods = "all"', f"methods = {only}").replace('"labels[0.5]"', "").replace(", ]", "]")
    suite.write_text(text.replace('["standard", ]', '["standard"]'))
    done = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--no-progress", "--no-leaderboard")
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(p.read_text()) for p in (folder / "res" / "runs").glob("*.json")]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    main = _run(tmp_path_factory.mktemp("fig_main"))
    two = _run(tmp_path_factory.mktemp("fig_m2"), ', n_modalities = 2, noise = [0.6, 1.0]',
               only='["early_fusion", "late_fusion"]')
    return main + two


@pytest.fixture()
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Draw one figure, keeping the matplotlib figure for inspection as well as the files."""
    from benchmark import figure_style

    figure_style.apply()
    kept = {}

    def draw(name: str, recs: list[dict]):
        module = figures.scripts()[name]
        real = module.save

        def keep(fig, out, stem):
            kept["fig"] = fig
            fig.canvas.draw()
            paths = real(fig, out, stem)
            return paths

        monkeypatch.setattr(module, "save", keep)
        paths = module.draw(recs, tmp_path)
        assert all(p.exists() and p.stat().st_size > 1000 for p in paths) and {p.suffix for p in paths} == {
            ".png", ".pdf"}
        return kept["fig"]
    return draw


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_every_figure_script_is_found() -> None:
    assert len(figures.scripts()) == 10


def test_robustness_curves_have_one_line_per_method_per_panel(records, drawn) -> None:
    fig = drawn("fig_01_robustness_curves", records)
    n_methods = len({r["spec"]["method"] for r in records})
    axes = visible_axes(fig)
    assert {ax.get_xlabel() for ax in axes} >= {"missing rate", "noise level"}
    for ax in axes:
        assert ax.get_ylabel() == "accuracy"
        assert len([ln for ln in ax.get_lines() if ln.get_label() in methods()]) == n_methods


def test_pattern_heat_map_has_every_pattern_and_method(records, drawn) -> None:
    fig = drawn("fig_02_missing_patterns", [r for r in records if r["spec"]["dataset_params"].get("n_modalities")
                                            is None])
    ax = visible_axes(fig)[0]
    assert len(ax.get_xticklabels()) == 7 and len(ax.get_yticklabels()) == len(methods())


def test_critical_difference_diagram_draws_every_method(records, drawn) -> None:
    fig = drawn("fig_03_critical_difference", records)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert all(m in texts for m in methods())


def test_pareto_panels_and_front(records, drawn) -> None:
    fig = drawn("fig_04_pareto", records)
    axes = visible_axes(fig)
    assert len(axes) == 2 and {ax.get_xlabel() for ax in axes} == {"training time (s)", "training FLOPs"}
    assert all(any(ln.get_label() == "Pareto front" for ln in ax.get_lines()) for ax in axes)


def test_seed_spread_has_a_box_per_method(records, drawn) -> None:
    fig = drawn("fig_05_seed_spread", records)
    ax = visible_axes(fig)[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == sorted(methods())


def test_complexity_scaling_has_a_point_per_modality_count(records, drawn) -> None:
    fig = drawn("fig_06_complexity_scaling", records)
    for ax in visible_axes(fig):
        assert ax.get_xlabel() == "number of modalities"
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert list(lines["early_fusion"].get_xdata()) == [2, 3]


def test_conformal_figure_has_forest_and_selection_path(records, drawn) -> None:
    fig = drawn("fig_07_conformal_shapley", records)
    forest, path = visible_axes(fig)[:2]
    assert [t.get_text() for t in forest.get_yticklabels()] == ["m0", "m1", "m2"]
    assert path.get_xlabel() == "modalities selected at most (q)" and len(path.get_lines()) == 1


def test_gap_histogram_has_the_mixture(records, drawn) -> None:
    fig = drawn("fig_08_modality_gap", records)
    ax = visible_axes(fig)[0]
    assert len(ax.patches) == 20 and ax.get_ylabel() == "density"
    assert {ln.get_label() for ln in ax.get_lines()} == {"balanced component", "imbalanced component"}


def test_reliability_has_clean_and_shift_panels(records, drawn) -> None:
    fig = drawn("fig_09_reliability", records)
    titles = [ax.get_title() for ax in visible_axes(fig)]
    assert any("clean" in t for t in titles) and any("strongest shift" in t for t in titles)


def test_robult_diagnostics_one_line_per_modality(records, drawn) -> None:
    fig = drawn("fig_10_robult_diagnostics", records)
    axes = visible_axes(fig)
    assert len(axes) == 2 and all(len(ax.get_lines()) == 3 for ax in axes)


def test_a_figure_without_its_data_says_why(drawn) -> None:
    with pytest.raises(figures.NoData, match="no finished run of conformal_shapley"):
        figures.scripts()["fig_07_conformal_shapley"].draw([], Path("/tmp"))


def test_figures_of_a_suite_with_no_records_says_where_it_looked_and_what_to_run(tmp_path: Path) -> None:
    from conftest import write_suite

    suite = write_suite(tmp_path, ["early_fusion"])  # its own folder, results/tiny, holds no record
    done = run_cli("figures", "--suite", str(suite), "--out", str(tmp_path / "figs"))
    assert done.returncode == 2, done.stderr
    assert "no record of suite tiny in" in done.stderr and "results/tiny/runs" in done.stderr
    assert "`python -m benchmark run --suite tiny` first" in done.stderr
