"""Screenshot the confusion matrices (coloured tables) and Evaluate's charts at the sizes a classroom meets: Evaluate's
first screen, its matrix, its trust and calibration charts, and the Leaderboard's matrices after its switch.

    python scripts/screenshot_matrices.py                          # -> artifacts/matrices/{what}_{W}x{H}.png
    python scripts/screenshot_matrices.py --sizes 1280x720 --fashion   # Fashion-MNIST's long class names

One `streamlit run app.py` (VITDEMO_HOME in a temporary folder: the shipped models only), headless Chromium; phones
and tablets (narrower than 1200 px) with a touch screen and the sidebar closed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

import browser  # noqa: E402
from screenshots import parse_size  # noqa: E402
from wait_bench import TABLE, _env  # noqa: E402

SIZES = ["1280x720", "1920x1080", "820x1180", "390x844"]
TIMEOUT_MS = 180_000


def _open(chromium: Any, url: str, size: tuple[int, int], fashion: bool) -> Any:
    touch = size[0] < 1200
    page = chromium.new_context(viewport={"width": size[0], "height": size[1]}, has_touch=touch).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    browser.wait_for_app(page, TIMEOUT_MS)
    if fashion:
        browser.set_sidebar(page, True)
        page.get_by_text("Fashion-MNIST", exact=True).first.click()
        browser.wait_idle(page, TIMEOUT_MS)
    if touch:
        browser.set_sidebar(page, False)
    return page


def _to_top(page: Any, locator: Any) -> None:
    """Scroll `locator` to the top of the window (what follows it fills the picture)."""
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)


def _go(page: Any, title: str, size: tuple[int, int]) -> None:
    browser.go_to_page(page, title)
    if size[0] < 1200:
        browser.set_sidebar(page, False)  # as a phone or tablet shows it: the sidebar is over the page


def shoot(chromium: Any, url: str, size: tuple[int, int], out: Path, fashion: bool) -> list[Path]:
    tag = f"{'fashion_' if fashion else ''}{size[0]}x{size[1]}"
    page = _open(chromium, url, size, fashion)
    _go(page, "Evaluate", size)
    page.locator(TABLE % "cm_").first.wait_for(state="visible")
    browser.wait_idle(page, TIMEOUT_MS)
    shots = [out / f"evaluate_first_{tag}.png"]
    page.screenshot(path=shots[-1])
    for name, selector in (("matrix", '[class*="st-key-cm_"]'), ("checks", '[class*="st-key-trust_curves_"]')):
        found = page.locator(selector).first
        if found.count():
            _to_top(page, found)
            shots.append(out / f"evaluate_{name}_{tag}.png")
            page.screenshot(path=shots[-1])
    reliability = page.get_by_text("Is its confidence honest?").first
    _to_top(page, reliability)
    shots.append(out / f"evaluate_calibration_{tag}.png")
    page.screenshot(path=shots[-1])

    _go(page, "Leaderboard", size)
    switch = page.get_by_text("Confusion matrices, loss and calibration").first
    switch.scroll_into_view_if_needed()
    switch.click()
    grid = page.locator(TABLE % "lb_grid").first
    grid.wait_for(state="visible")
    browser.wait_idle(page, TIMEOUT_MS)
    _to_top(page, page.locator('[class*="st-key-lb_grid"]').first)
    shots.append(out / f"leaderboard_matrices_{tag}.png")
    page.screenshot(path=shots[-1])
    page.context.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=SIZES)
    parser.add_argument("--fashion", action="store_true", help="Fashion-MNIST (long class names) instead of MNIST")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "matrices"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="vitdemo-shots-") as home,
        sync_playwright() as pw,
        browser.serve_app(_env(home), log_path=Path(home) / "streamlit.log") as url,
    ):
        chromium = browser.launch_browser(pw)
        for size in map(parse_size, args.sizes):
            for path in shoot(chromium, url, size, out, args.fashion):
                print(path)
        chromium.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
