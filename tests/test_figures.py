"""Every paper figure renders from results the runner made (a tiny suite of every method, two datasets,
two seeds and two training conditions, read back by ``benchmark.results.load``), it draws what it claims
and it never pools training conditions as seeds; the files are the same bytes whatever the hash seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.lines
import matplotlib.text
import numpy as np
import pytest
from conftest import REPO, run_cli

from benchmark import figures
from benchmark.registry import methods
from benchmark.results import Results, load
from benchmark.scope import suite_scope

FIXTURE_SUITE = """
name = "figure_fixture"
description = "every method, two datasets (3 and 2 modalities), two seeds, two training conditions"
methods = "all"
seeds = [0, 1]
training_conditions = ["standard", "labels[0.5]"]
test_conditions = ["clean", "missing_modality[*]", "random_missing[0.3]", "random_missing[0.6]",
                   "missing_pattern[*]", "gaussian_noise[m0,1]", "gaussian_noise[m0,3]", "mean_shift[m0,2]",
                   "correlation_shift[m1,any_class]"]
datasets = [{name = "synthetic_pid", n = 300},
            {name = "synthetic_pid", n = 300, n_modalities = 2, noise = [0.6, 1.0]}]

[budget]
max_epochs = 3
patience = 2
width = 16
"""
DRAWS_SUITE = """
name = "draws"
description = "one method, two hyperparameter draws"
methods = ["early_fusion"]
datasets = [{name = "synthetic_pid", n = 300}]
seeds = [0]
hparam_draws = 2
test_conditions = ["clean"]

[budget]
max_epochs = 2
patience = 2
width = 16
"""
CONDITIONS = ["standard", "labels[0.5]"]
#: The figures that draw one panel set: the ``standard`` training condition only.
ONE_CONDITION = ["fig_01_robustness_curves", "fig_02_missing_patterns", "fig_04_pareto", "fig_05_seed_spread",
                 "fig_06_complexity_scaling", "fig_07_conformal_shapley", "fig_08_modality_gap",
                 "fig_09_reliability", "fig_10_robult_diagnostics"]
DRAW_ALL = """
import sys
from pathlib import Path
from benchmark import figures
from benchmark.results import load
res = load(Path(sys.argv[1]))
done = figures.draw_all(res, Path(sys.argv[2]), lambda name: res)
assert all(isinstance(v, list) for v in done.values()), done
"""
#: Okabe-Ito's yellow, the colour that vanished on white.
YELLOW = (0xF0, 0xE4, 0x42)


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture suite, run by the runner into a temporary folder."""
    folder = tmp_path_factory.mktemp("figures")
    suite = folder / "figure_fixture.toml"
    suite.write_text(FIXTURE_SUITE)
    done = run_cli("run", "--suite", str(suite), "--results", str(folder / "res"), "--no-progress",
                   "--no-leaderboard", extra_env={"BENCHMARK_DATA": str(tmp_path_factory.getbasetemp() / "data")},
                   timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "res"


@pytest.fixture(scope="session")
def results(results_dir: Path) -> Results:
    res = load(results_dir)
    assert not res.problems and not res.failed and len(res.records) == len(methods()) * 2 * 2 * 2
    return res


@pytest.fixture()
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Draw one figure, keeping the matplotlib figure for inspection as well as the files."""
    from benchmark import figure_style

    figure_style.apply()
    def draw(name: str, res: Results, stem: str | None = None):
        """The figure saved as ``stem`` (the last one the script saves by default)."""
        module = figures.scripts()[name]
        real = module.save
        kept = {}

        def keep(fig, out, saved_as):
            kept[saved_as] = fig
            fig.canvas.draw()
            return real(fig, out, saved_as)

        monkeypatch.setattr(module, "save", keep)
        paths = module.draw(res, tmp_path)
        assert all(p.exists() and p.stat().st_size > 1000 for p in paths) and {p.suffix for p in paths} == {
            ".png", ".pdf"}
        return kept[stem] if stem else list(kept.values())[-1]
    return draw


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def titles(fig) -> str:
    return " | ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes])


def clean_accuracy(res: Results, condition: str, dataset: str, method: str) -> list[float]:
    """The clean accuracies of one cell over seeds, read from the records (not the table)."""
    return [r.metrics["clean"]["accuracy"] for r in res.ok
            if (r.spec.train_condition, r.dataset, r.method) == (condition, dataset, method)]


def test_every_figure_script_is_found() -> None:
    assert len(figures.scripts()) == 10


@pytest.mark.parametrize("name", ONE_CONDITION)
def test_a_figure_of_one_panel_set_draws_the_standard_condition_and_says_so(results, drawn, name) -> None:
    text = titles(drawn(name, results))
    assert "training condition: standard" in text and "labels[0.5]" not in text


def test_robustness_curves_have_one_line_per_method_per_panel_of_standard_runs_only(results, drawn) -> None:
    fig = drawn("fig_01_robustness_curves", results, "fig_01_robustness_curves_missing")
    axes = visible_axes(fig)
    assert len(axes) == 2  # one figure per family, a panel per dataset
    pooled_differs = False
    for ax in axes:
        assert ax.get_ylabel() == "accuracy (%)" and ax.get_xlabel() == "missing rate"
        lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label() in methods()}
        assert set(lines) == set(methods())
        dataset = ax.get_title().split(": ")[0]
        for method, line in lines.items():
            assert line.get_xdata()[0] == 0  # severity 0 is the clean test set: the mean over standard seeds
            standard = clean_accuracy(results, "standard", dataset, method)
            assert len(standard) == 2 and line.get_ydata()[0] == pytest.approx(100 * np.mean(standard))
            both = standard + clean_accuracy(results, "labels[0.5]", dataset, method)
            pooled_differs |= not np.isclose(np.mean(both), np.mean(standard))
    assert pooled_differs  # else the check above could not tell pooled curves from standard ones
    assert fig.legends and not any(ax.get_legend() for ax in axes)  # one legend, outside the panels


def test_pattern_heat_map_has_every_pattern_in_grid_order_and_every_method(results, drawn) -> None:
    fig = drawn("fig_02_missing_patterns", results)
    patterns = sorted([[t.get_text() for t in ax.get_xticklabels()] for ax in visible_axes(fig)], key=len)
    assert patterns == [["m0", "m1", "m0+m1"], ["m0", "m1", "m2", "m0+m1", "m0+m2", "m1+m2", "m0+m1+m2"]]
    for ax in visible_axes(fig):
        assert [t.get_text() for t in ax.get_yticklabels()] == sorted(methods())


def test_critical_difference_one_diagram_per_training_condition_with_datasets_as_blocks(results, drawn) -> None:
    fig = drawn("fig_03_critical_difference", results)
    axes = visible_axes(fig)
    assert [ax.get_title().split(" — ")[0] for ax in axes] == [f"training condition: {c}" for c in CONDITIONS]
    for ax in axes:
        assert "over 2 datasets" in ax.get_title()
        texts = " ".join(t.get_text() for t in ax.texts)
        assert all(m in texts for m in methods())


def test_pareto_panels_front_and_labelled_log_axes(results, drawn) -> None:
    for stem, label in (("fig_04_pareto_time", "training time (s)"), ("fig_04_pareto_flops", "training FLOPs")):
        fig = drawn("fig_04_pareto", results, stem)
        axes = visible_axes(fig)
        assert len(axes) == 2 and {ax.get_xlabel() for ax in axes} == {label}
        for ax in axes:
            assert any(ln.get_label() == "Pareto front" for ln in ax.get_lines())
            shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()
                     and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
            assert shown, f"{stem}: a log axis without a labelled tick"
            assert ax.containers, "error bars over seeds"


def test_seed_spread_has_a_box_per_method_with_a_visible_median(results, drawn) -> None:
    fig = drawn("fig_05_seed_spread", results)
    axes = visible_axes(fig)
    assert len(axes) == 2
    for ax in axes:
        names = [t.get_text() for t in ax.get_xticklabels()]
        assert names == sorted(methods())
        medians = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and np.ptp(ln.get_xdata()) == pytest.approx(0.5)]
        assert [ln.get_ydata()[0] for ln in medians] == pytest.approx(
            [100 * np.median(clean_accuracy(results, "standard", ax.get_title(), m)) for m in names])
        assert {ln.get_color() for ln in medians} == {"black"}  # not the box's own colour


def test_complexity_scaling_has_a_point_per_modality_count(results, drawn) -> None:
    fig = drawn("fig_06_complexity_scaling", results)
    for ax in visible_axes(fig):
        assert ax.get_xlabel() == "number of modalities"
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert list(lines["early_fusion"].get_xdata()) == [2, 3]


def test_conformal_figure_has_forest_and_selection_path(results, drawn) -> None:
    fig = drawn("fig_07_conformal_shapley", results)
    forests = sorted(([t.get_text() for t in ax.get_yticklabels()] for ax in visible_axes(fig)[::2]), key=len)
    assert forests == [["m0", "m1"], ["m0", "m1", "m2"]]
    path = visible_axes(fig)[1]
    assert path.get_xlabel() == "modalities selected at most (q)" and len(path.get_lines()) == 1


def test_gap_histogram_has_the_mixture(results, drawn) -> None:
    fig = drawn("fig_08_modality_gap", results)
    ax = visible_axes(fig)[0]
    assert len(ax.patches) == 20 and ax.get_ylabel() == "density"
    assert {ln.get_label() for ln in ax.get_lines()} == {"balanced component", "imbalanced component"}


def test_reliability_has_clean_and_shift_panels(results, drawn) -> None:
    fig = drawn("fig_09_reliability", results)
    found = [ax.get_title() for ax in visible_axes(fig)]
    assert len(found) == 4 and any("clean" in t for t in found)
    shifts = [t.split("common shift ")[1] for t in found if "common shift" in t]
    assert len(shifts) == 2
    for ax in visible_axes(fig)[1::2]:  # one shift per dataset, the same for every method
        assert [t.get_text() for t in ax.get_yticklabels()] == sorted(methods())


def test_robult_diagnostics_one_line_per_modality(results, drawn) -> None:
    fig = drawn("fig_10_robult_diagnostics", results)
    assert sorted(len(ax.get_lines()) for ax in visible_axes(fig)) == [2, 2, 3, 3]


def test_figures_refuse_results_that_are_not_model_selected(tmp_path: Path) -> None:
    """Two hyperparameter draws of one method are not two seeds: draw_all asks for selected results."""
    from benchmark.selection import select

    suite = tmp_path / "draws.toml"
    suite.write_text(DRAWS_SUITE)
    done = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-progress",
                   "--no-leaderboard")
    assert done.returncode == 0, done.stdout + done.stderr
    res = load(tmp_path / "res")
    assert sorted(r.spec.draw for r in res.ok) == [0, 1]
    with pytest.raises(ValueError, match="2 hyperparameter draws"):
        figures.draw_all(res, tmp_path / "figs")
    done = figures.draw_all(select(res)[0], tmp_path / "figs")
    assert isinstance(done["fig_05_seed_spread"], list)


def test_a_figure_without_its_data_says_why(tmp_path: Path) -> None:
    empty = load(tmp_path)  # a folder without a record
    with pytest.raises(figures.NoData, match="no finished run of conformal_shapley"):
        figures.scripts()["fig_07_conformal_shapley"].draw(empty, tmp_path)


def test_every_figure_is_the_same_bytes_whatever_the_hash_seed(results_dir: Path, tmp_path: Path) -> None:
    """fig_03 drew its bars through sets of method names, whose order follows PYTHONHASHSEED. The two
    drawings run at once (two processes)."""
    drawing = [subprocess.Popen([sys.executable, "-c", DRAW_ALL, str(results_dir), str(tmp_path / seed)], cwd=REPO,
                                env={**os.environ, "PYTHONHASHSEED": seed}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for seed in ("0", "1")]
    for proc in drawing:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    files = sorted(p.name for p in (tmp_path / "0").iterdir())
    assert "fig_03_critical_difference.pdf" in files and "fig_05_seed_spread__labels-0_5.png" in files
    stems = {f.split("__")[0].rsplit(".", 1)[0] for f in files}
    assert all(f"{s}__labels-0_5.png" in files for s in stems if s != "fig_03_critical_difference"), files
    assert [f for f in files if (tmp_path / "0" / f).read_bytes() != (tmp_path / "1" / f).read_bytes()] == []


def test_figures_of_a_suite_with_no_records_says_where_it_looked_and_what_to_run(tmp_path: Path) -> None:
    from conftest import write_suite

    suite = write_suite(tmp_path, ["early_fusion"])  # its own folder, results/tiny, holds no record
    done = run_cli("figures", "--suite", str(suite), "--out", str(tmp_path / "figs"))
    assert done.returncode == 2, done.stderr
    assert re.search(r"no record of suite \S*tiny(\.toml)? in \S*results/tiny/runs", done.stderr), done.stderr
    assert re.search(r"`python -m benchmark run --suite \S*tiny(\.toml)?` first", done.stderr), done.stderr


def test_figures_fit_a_page_with_readable_text_and_visible_colours(results, monkeypatch, tmp_path: Path) -> None:
    """Every figure at most 7 x 9 inches, no text under 6 pt at that size, no line colour that vanishes on
    white (Okabe-Ito's yellow), and the PNG holds no yellow pixel."""
    from PIL import Image

    from benchmark import figure_style

    seen = []
    real = figure_style.save

    def keep(fig, out, stem):
        fig.canvas.draw()
        seen.append((stem, fig.get_size_inches().copy(), [t for t in fig.findobj(matplotlib.text.Text)
                                                           if t.get_visible() and t.get_text()],
                     [ln.get_color() for ln in fig.findobj(matplotlib.lines.Line2D) if ln.get_visible()]))
        return real(fig, out, stem)

    monkeypatch.setattr(figure_style, "save", keep)  # the scripts are imported afresh by draw_all: they take it
    done = figures.draw_all(results, tmp_path, lambda name: results)
    assert all(isinstance(v, list) for v in done.values()), done
    assert len(seen) == len(list(tmp_path.glob("*.png"))) > 20
    for stem, (w, h), texts, colours in seen:
        assert w <= figure_style.PAGE_WIDTH + 0.01 and h <= figure_style.MAX_HEIGHT + 0.01, (stem, w, h)
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < figure_style.MIN_FONT]
        assert not small, (stem, small)
        pale = {c for c in colours if figure_style.luminance(c) > figure_style.MAX_LUMINANCE}
        assert not pale, (stem, pale)
    for png in tmp_path.glob("*.png"):
        pixels = np.asarray(Image.open(png).convert("RGB"), dtype=int)
        assert not (np.abs(pixels - YELLOW).sum(axis=2) < 30).any(), f"{png.name} has Okabe-Ito yellow"


def test_palette_is_visible_on_white_and_every_method_has_its_own_style() -> None:
    from benchmark import figure_style

    assert all(figure_style.luminance(c) <= figure_style.MAX_LUMINANCE for c in figure_style.PALETTE)
    assert figure_style.luminance("#F0E442") > figure_style.MAX_LUMINANCE  # the check would catch the yellow
    assert figure_style.luminance("#FFFFFF") == pytest.approx(1) and figure_style.luminance("#000000") == 0
    labels = [*figure_style.KNOWN, "robult+dropout", "mm_dro+erm", "conformal_shapley+lower"]
    styles = [figure_style.method_style(m) for m in labels]
    keys = {(s["color"], str(s["linestyle"]), s["marker"], s.get("markerfacecolor")) for s in styles}
    assert len(keys) == len(labels)
    assert len({s["color"] for s in styles[:len(figure_style.KNOWN)]}) == len(figure_style.KNOWN)


def test_a_suite_draws_into_its_own_folder_never_into_paper_figures(results_dir: Path) -> None:
    res = load(results_dir)
    assert figures.default_out(res) == results_dir / "figures"
    full = load(REPO / "results", suite_scope("full"))
    assert figures.default_out(full) == figures.FIGURES_DIR


COMMITTED = sorted(figures.FIGURES_DIR.glob("fig_*.png"))


@pytest.mark.parametrize("png", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_figure_fits_a_page_and_has_no_yellow(png: Path) -> None:
    from PIL import Image

    image = Image.open(png)
    dpi = 200  # figure_style's savefig.dpi
    assert image.size[0] / dpi <= 7.01 and image.size[1] / dpi <= 9.01, image.size
    pixels = np.asarray(image.convert("RGB"), dtype=int)
    assert not (np.abs(pixels - YELLOW).sum(axis=2) < 30).any()
    assert png.with_suffix(".pdf").exists()
