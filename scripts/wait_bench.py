"""The waits a lesson meets, timed in a real browser: Evaluate's first visit, the Leaderboard's confusion matrices,
"Run the checks", and the first drawings of a session on Draw.

    python scripts/wait_bench.py                     # this checkout
    python scripts/wait_bench.py --root /tmp/before  # another checkout (e.g. `git archive main`), for "before"
    python /tmp/before/scripts/wait_bench.py         # a checkout from before the matrices were tables (its own
                                                     # copy of this script waits for plotly heatmaps instead)

Prints figures, asserts nothing. Two fresh servers (`streamlit run app.py`, VITDEMO_HOME in a temporary folder, so
nothing is cached but what the checkout ships), one headless Chromium (/usr/bin/chromium), 1280x720:
1. Leaderboard: open it, switch on "Confusion matrices, loss and calibration" (the shipped ViT and CNN are picked
   by default): seconds from the switch to the matrices. Then Draw: seconds from the mouse's release to both
   answers, for a session's first drawing, its second, and a second session's first.
2. Evaluate (a fresh server, after one visit to Draw: its first script run imports and loads the models): seconds
   from opening Evaluate in a new browser (nothing cached) to its confusion matrix drawn (TABLE below); the same
   in another tab of that browser (its cache holds Streamlit's JavaScript); from the menu, for a student already in
   the app (Draw open in a new session, then Evaluate clicked in the sidebar); then "Run the checks" (if offered:
   already done means 0) to the checks' charts.
Each time includes the browser's rendering; run it on a quiet machine, or note the load (printed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import browser  # noqa: E402

TIMEOUT_MS = 180_000
# "Drawn": the confusion matrix's HTML table is in the page (vitdemo.ui.confusion's component puts it there once
# its script has run; the cells are plain HTML, so it is visible when it exists). Until the matrices were HTML
# tables this waited for the data grid's canvas ('canvas[data-testid="data-grid-canvas"]'), and before that for
# the plotly heatmap's ".js-plotly-plot".
TABLE = '[class*="st-key-%s"] table.vd-cm'


def _env(home: str) -> dict[str, str]:
    env = {"VITDEMO_HOME": home}
    shared = ROOT.parent / "shared" / "data"
    if not os.environ.get("VITDEMO_DATA_DIR") and shared.is_dir():
        env["VITDEMO_DATA_DIR"] = str(shared)
    return env


def _new_page(chromium: Any, url: str) -> Any:
    page = chromium.new_context(viewport=browser.VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    browser.wait_for_app(page, TIMEOUT_MS)
    return page


def _until(page: Any, selector: str, t0: float) -> float:
    page.locator(selector).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def _drawing_s(page: Any, digit: str) -> float:
    """Draw `digit`; seconds from the last stroke's release until both answers are on the page."""
    strokes = browser.DIGIT_STROKES[digit]
    for i, points in enumerate(strokes):
        browser.draw_stroke(page, browser.canvas(page).bounding_box(), points)
        if i == len(strokes) - 1:
            t0 = time.perf_counter()
    for model in ("ViT", "CNN"):
        page.locator(f'.vd-predbox[aria-label="{model} predicts {digit}"]').first.wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def leaderboard_and_draw(chromium: Any, url: str) -> dict[str, float]:
    found = {}
    page = _new_page(chromium, f"{url}/leaderboard")
    switch = page.get_by_text("Confusion matrices, loss and calibration").first
    switch.scroll_into_view_if_needed()
    t0 = time.perf_counter()
    switch.click()
    found["leaderboard matrices"] = _until(page, TABLE % "lb_grid", t0)
    page.context.close()

    page = _new_page(chromium, url)
    browser.canvas(page)
    found["draw: first drawing"] = _drawing_s(page, "7")
    browser.wait_idle(page)
    browser.click_button(page, "Clear")
    found["draw: second drawing"] = _drawing_s(page, "1")
    page.context.close()
    page = _new_page(chromium, url)
    browser.canvas(page)
    found["draw: next session's first"] = _drawing_s(page, "7")
    page.context.close()
    return found


def evaluate(chromium: Any, url: str) -> dict[str, float]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    found = {}
    _new_page(chromium, url).context.close()  # the server's first script run (imports, models) is not Evaluate's
    page = chromium.new_context(viewport=browser.VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    t0 = time.perf_counter()
    page.goto(f"{url}/evaluate")
    found["evaluate: first visit"] = _until(page, TABLE % "cm_", t0)
    browser.wait_idle(page, TIMEOUT_MS)
    again = page.context.new_page()  # another tab of the same browser: its cache holds the chart library
    again.set_default_timeout(TIMEOUT_MS)
    t0 = time.perf_counter()
    again.goto(f"{url}/evaluate")
    found["evaluate: next tab"] = _until(again, TABLE % "cm_", t0)
    browser.wait_idle(again, TIMEOUT_MS)
    again.close()
    inside = _new_page(chromium, url)  # a student already in the app (Draw open) who picks Evaluate in the menu
    link = inside.locator('[data-testid="stSidebarNavLink"]', has_text="Evaluate").first
    t0 = time.perf_counter()
    link.click()
    found["evaluate: from the menu"] = _until(inside, TABLE % "cm_", t0)
    inside.context.close()
    button = page.get_by_role("button", name="Run the checks")
    with contextlib.suppress(PlaywrightTimeout):
        button.first.wait_for(timeout=10_000)  # the page's last part; absent when the checks are stored
    if button.count():
        button.first.scroll_into_view_if_needed()
        t0 = time.perf_counter()
        button.first.click()
        found["evaluate: run the checks"] = _until(page, '[class*="st-key-trust_curves_"]', t0)
    else:
        found["evaluate: run the checks"] = 0.0
    page.context.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose app is timed (default: this one)")
    parser.add_argument("--phases", nargs="+", default=["leaderboard", "evaluate"], choices=["leaderboard", "evaluate"])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)", flush=True)
    found: dict[str, float] = {}
    with sync_playwright() as pw:
        chromium = browser.launch_browser(pw)
        phases = {"leaderboard": leaderboard_and_draw, "evaluate": evaluate}
        for phase in [phases[name] for name in args.phases]:
            with tempfile.TemporaryDirectory(prefix="vitdemo-wait-") as home:
                log = Path(home) / "streamlit.log"
                with browser.serve_app(_env(home), log_path=log, root=args.root) as url:
                    for name, seconds in phase(chromium, url).items():
                        found[name] = seconds
                        print(f"{name:<28} {seconds:6.2f} s", flush=True)
        chromium.close()
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
