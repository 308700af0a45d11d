"""leaderboard.html is self-contained, and its tables sort in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.leaderboard import write_leaderboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def record(method: str, seed: int, clean: float) -> dict:
    metrics = {"clean": {"accuracy": clean, "ece": 0.05, "family": "clean", "severity": None}}
    for rate in (0.1, 0.5):
        metrics[f"random_missing[{rate}]"] = {"accuracy": clean - rate / 4, "family": "missing", "severity": rate}
    return {"spec": {"method": method, "dataset": "toy", "train_condition": "standard", "seed": seed, "draw": 0},
            "status": "ok", "metrics": metrics, "val_metrics": {"clean": {"accuracy": clean}},
            "timings": {"fit_seconds": 1.0 + seed, "inference_seconds_per_sample": 1e-5},
            "environment": {"device": "cpu", "device_name": "test-cpu"}, "clock": "perf_counter",
            "memory_meter": "process_vmhwm_reset_per_phase"}


@pytest.fixture()
def page(tmp_path: Path) -> Path:
    accs = {"alpha": 0.70, "beta": 0.90, "gamma": 0.80}
    recs = [record(m, s, a + 0.005 * s) for m, a in accs.items() for s in range(3)]
    write_leaderboard(recs, tmp_path, "unit", baseline="alpha")
    return tmp_path / "leaderboard.html"


def test_page_is_self_contained_and_says_where_timings_came_from(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must not load anything from a network"
    assert "<script>" in text and "perf_counter" in text and "test-cpu" in text
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
        table = "table#overview-toy-standard"

        def order() -> list[str]:
            return tab.locator(f"{table} tbody tr td:first-child").all_inner_texts()

        assert sorted(order()) == ["alpha", "beta", "gamma"]
        tab.click(f"{table} th:has-text('clean acc')")
        assert order() == ["beta", "gamma", "alpha"]  # descending on the first click
        tab.click(f"{table} th:has-text('clean acc')")
        assert order() == ["alpha", "gamma", "beta"]
        tab.click(f"{table} th:has-text('method')")
        assert order() == ["gamma", "beta", "alpha"]
        browser.close()
