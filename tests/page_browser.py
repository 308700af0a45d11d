"""Looking at a page in headless Chromium (Debian's ``chromium``, driven by Playwright): the measurements
the page test checks, and the screenshots committed under ``docs/``.

``python tests/page_browser.py results/leaderboard.html docs/`` writes ``docs/leaderboard-1400.png`` and
``docs/leaderboard-400.png`` and prints what was measured."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: (width, height) of the screens the page must answer on: a laptop and a phone.
SCREENS = {1400: 900, 400: 800}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
#: Evaluated in the page: sideways overflow, and where the summary starts and ends.
MEASURE = """() => {
  const s = document.getElementById('summary'), t = s && s.querySelector('table');
  const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1
      && !e.closest('.scroll')).map(e => e.tagName + (e.id ? '#' + e.id : '')).slice(0, 5);
  return {innerWidth, innerHeight, scrollWidth: document.documentElement.scrollWidth,
          summaryTop: s ? s.getBoundingClientRect().top : null,
          firstTableTop: t ? t.getBoundingClientRect().top : null, wide,
          viewport: !!document.querySelector('meta[name=viewport]')};
}"""


def launch(playwright):  # noqa: ANN001, ANN201 - Playwright's own types
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def measure(page: Path, screenshots: Path | None = None) -> dict[int, dict]:
    """Per screen width: the page's measurements (and a screenshot of the first screen in
    ``screenshots/leaderboard-WIDTH.png``)."""
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = launch(p)
        for width, height in SCREENS.items():
            tab = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            tab.goto(page.resolve().as_uri())
            out[width] = tab.evaluate(MEASURE)
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(screenshots / f"leaderboard-{width}.png"))
            tab.close()
        browser.close()
    return out


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None), indent=1))
