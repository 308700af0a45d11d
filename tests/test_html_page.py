"""leaderboard.html is self-contained, and its tables sort in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture()
def page(runner_results, tmp_path: Path) -> Path:
    write_reports(runner_results, tmp_path, "unit", baseline="late_fusion")
    return tmp_path / "leaderboard.html"


def test_page_is_self_contained_and_says_where_timings_came_from(page: Path) -> None:
    text = page.read_text()
    ids = re.findall(r'<table class="sortable" id="([^"]+)"', text)
    assert ids and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids), ids  # usable in a CSS selector
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must not load anything from a network"
    assert "<script>" in text and "perf_counter" in text and "(cpu)" in text
    assert "✓" in text  # the best method is marked


def test_sorting_a_column_in_headless_chromium(page: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium on PATH (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH; .ci/run installs Debian's chromium and sets REQUIRE_BROWSER=1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        tab = browser.new_page()
        tab.goto(page.as_uri())
        table = "table#overview-synthetic_pid-n-300-n_modalities-3-standard"

        def order() -> list[str]:
            return tab.locator(f"{table} tbody tr td:first-child").all_inner_texts()

        def sort_values() -> list[float]:
            return [float(v) for v in tab.locator(f"{table} tbody tr td:nth-child(2)").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value') || 'nan')")]

        assert sorted(order()) == ["early_fusion", "late_fusion", "raises_in_fit"]
        tab.click(f"{table} th:has-text('clean acc')")
        values = sort_values()
        finite = [v for v in values if v == v]
        assert finite == sorted(finite, reverse=True)  # descending on the first click
        tab.click(f"{table} th:has-text('clean acc')")
        finite = [v for v in sort_values() if v == v]
        assert finite == sorted(finite)
        tab.click(f"{table} th:has-text('method')")
        assert order() == ["raises_in_fit", "late_fusion", "early_fusion"]
        browser.close()
