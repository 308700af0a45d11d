"""leaderboard.html answers first and works in a real headless browser: self-contained, the summary in the
first screen at 1400 px and at 400 px, nothing scrolls sideways, sorting by keyboard with its direction
shown, every row linked to its record files, the failed runs and the provenance on the page."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from page_browser import CHROMIUM, SCREENS, launch, measure

from benchmark.report import write_reports

TABLE = "table#overview-synthetic_pid-n-300-n_modalities-3-standard"


@pytest.fixture()
def page(runner_results, tmp_path: Path) -> Path:
    write_reports(runner_results, tmp_path, "unit", baseline="late_fusion")
    return tmp_path / "leaderboard.html"


def need_browser() -> None:
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium on PATH (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH; .ci/run installs Debian's chromium and sets REQUIRE_BROWSER=1")


class Links(HTMLParser):
    """Every href and every id of a page, and the order of its h2 headings (the standard library's parser:
    an independent reading of what the template wrote)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if "href" in a:
            self.hrefs.append(a["href"])
        if "id" in a:
            self.ids.add(a["id"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data: str) -> None:
        if self._in_h2 and data.strip():
            self.h2.append(data.strip())
            self._in_h2 = False


def test_page_is_self_contained_answers_first_and_links_every_record(page: Path, runner_results) -> None:
    text = page.read_text()
    ids = re.findall(r'<table class="sortable" id="([^"]+)"', text)
    assert ids and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids), ids  # usable in a CSS selector
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must not load anything from a network"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    parsed = Links()
    parsed.feed(text)
    assert parsed.h2[0] == "Summary" and parsed.h2[1] == "Contents", parsed.h2  # the answer before anything else
    assert {"Failed runs", "Provenance", "Datasets"} <= set(parsed.h2)
    # Every in-page link lands on an element; every file link is relative and points at a file that exists.
    for href in parsed.hrefs:
        if href.startswith("#"):
            assert href[1:] in parsed.ids, href
        else:
            assert not href.startswith("/") and (page.parent / href).exists(), href
    linked = {(page.parent / h).resolve() for h in parsed.hrefs if h.endswith(".json")}
    assert linked == {r.path.resolve() for r in runner_results.records}  # every record, failed ones included
    assert "raises_in_fit" in text.split('id="failed"')[1]  # the failed runs are listed
    provenance = text.split('id="provenance"')[1]
    commits = {str(r.body["environment"].get("git_commit") or "unknown")[:12] for r in runner_results.records}
    assert all(c in provenance for c in commits) and "perf_counter" in provenance and "(cpu" in provenance
    assert "✓" in text  # the best method is marked


def test_rows_start_ordered_by_score(page: Path) -> None:
    table = pd.read_csv(page.parent / "leaderboard.csv")
    part = table[(table["dataset"] == "synthetic_pid[n=300,n_modalities=3]") & (table["train_condition"] == "standard")]
    expected = part.sort_values("clean_primary", ascending=False, na_position="last")["method"].tolist()
    body = page.read_text().split(f'id="{TABLE.split("#")[1]}"')[1].split("</tbody>")[0]
    found = re.findall(r'<tr id="row-[^"]*"><td data-value="([^"]+)"', body)
    assert found == expected


def test_summary_in_the_first_screen_and_nothing_scrolls_sideways(page: Path, tmp_path: Path) -> None:
    need_browser()
    seen = measure(page, tmp_path / "shots")
    for width, height in SCREENS.items():
        m = seen[width]
        assert m["viewport"] and m["innerWidth"] == width
        assert m["scrollWidth"] <= m["innerWidth"], (width, m)  # no sideways scrolling of the page
        assert not m["wide"], (width, m["wide"])
        assert m["summaryTop"] is not None and m["firstTableTop"] < height / 2, (width, m)  # the answer, at once
        assert (tmp_path / "shots" / f"leaderboard-{width}.png").stat().st_size > 5000


def test_sorting_by_keyboard_shows_its_direction(page: Path) -> None:
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        tab = browser.new_page()
        tab.goto(page.as_uri())
        assert not tab.locator(TABLE).is_visible()  # its section starts closed (only the first one is open)
        tab.locator(f"details:has({TABLE}) > summary").press("Enter")  # the section opens from the keyboard too
        assert tab.locator(TABLE).is_visible()

        def order() -> list[str]:
            return tab.locator(f"{TABLE} tbody tr td:first-child").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value'))")

        def values(col: int) -> list[float]:
            return [float(v) for v in tab.locator(f"{TABLE} tbody tr td:nth-child({col})").evaluate_all(
                "cells => cells.map(c => c.getAttribute('data-value') || 'nan')")]

        def sort_state() -> dict[str, str]:
            return tab.locator(f"{TABLE} th[aria-sort]").evaluate_all(
                "ths => Object.fromEntries(ths.map(t => [t.innerText.trim(), t.getAttribute('aria-sort')]))")

        assert sorted(order()) == ["early_fusion", "late_fusion", "raises_in_fit"]
        assert len(sort_state()) == 1 and list(sort_state().values()) == ["descending"]  # as the rows start
        ece = tab.locator(f"{TABLE} th button", has_text="clean ECE")
        ece.focus()
        tab.keyboard.press("Enter")  # a button: reachable and pressed from the keyboard
        col = 1 + ece.evaluate("b => b.closest('th').cellIndex")
        finite = [v for v in values(col) if v == v]
        assert finite == sorted(finite) and list(sort_state().values()) == ["ascending"]  # less error first
        tab.keyboard.press("Space")
        finite = [v for v in values(col) if v == v]
        assert finite == sorted(finite, reverse=True) and list(sort_state().values()) == ["descending"]
        arrow = tab.locator(f"{TABLE} th[aria-sort] .dir").evaluate("e => getComputedStyle(e, '::after').content")
        assert arrow == '" ▼"'  # the direction is shown
        tab.locator(f"{TABLE} th button", has_text="method").click()
        assert order() == ["early_fusion", "late_fusion", "raises_in_fit"]
        # A link from the summary opens the closed section it points into.
        target = tab.locator("#summary a[href^='#row-']").first.get_attribute("href")
        tab.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
        tab.goto(page.as_uri() + target)
        assert tab.locator(target).is_visible()
        browser.close()
