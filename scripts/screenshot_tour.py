"""Screenshot every page at the sizes a classroom meets, in the Simple and the Expert view: a student's tour.

    python scripts/screenshot_tour.py                      # -> artifacts/tour/{view}_{page}_{W}x{H}.png
    python scripts/screenshot_tour.py --sizes 390x844 --views simple --pages Draw Race
    python scripts/screenshot_tour.py --full               # also {view}_{page}_{W}x{H}_full.png: the whole page

One `streamlit run app.py` (VITDEMO_HOME in a temporary folder, a lesson in full swing as in screenshots.py
--busy: a run training now and eight class drawings) for all pictures, headless Chromium. For each view and size
one browser session draws a 7 on Draw and then opens every page through the sidebar, so the lab and Under the
hood show the drawing. The Expert pictures are taken in sessions started after the class's view was set to
Expert (the teacher's setting), the Simple ones before. The first visit to Race plays the class race for a few
seconds (a loopback server makes everyone the teacher), so its chart has curves on every later picture.
`--full` stretches the window to the page's height for a second picture (what is below the fold).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]  # vitdemo, tests/browser.py, screenshots

import browser  # noqa: E402
from screenshots import busy_class, parse_size  # noqa: E402

from vitdemo import paths  # noqa: E402

SIZES = ["1280x720", "1920x1080", "820x1180", "390x844"]
PAGES = ["Draw", "Present", "Read a number", "Robustness lab", "Race", "Train", "Evaluate", "Leaderboard",
         "Class set", "Under the hood"]  # fmt: skip
TOUCH_BELOW_PX = 1200
RACE_PLAY_S = 8.0  # how long the first visit lets the class race train


def slug(title: str) -> str:
    return title.lower().replace(" ", "_")


def _page_height(page: Any) -> int:
    return int(
        page.evaluate("""() => {
      const main = document.querySelector('[data-testid="stMain"]');
      return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
    }""")
    )


def _play_race(page: Any) -> None:
    """Play the class race for RACE_PLAY_S seconds, then pause it (its curves stay for every later picture)."""
    play = page.get_by_role("button", name="Play")
    if not play.count():
        return
    play.first.click()
    page.wait_for_timeout(RACE_PLAY_S * 1000)
    pause = page.get_by_role("button", name="Pause")
    if pause.count():
        pause.first.click()
    browser.wait_idle(page)


def shoot(page: Any, out: Path, size: tuple[int, int], full: bool) -> list[str]:
    page.mouse.move(size[0] - 5, size[1] - 5)  # no hover highlight in the picture
    page.wait_for_timeout(300)
    page.screenshot(path=str(out))
    shots = [out.name]
    if full:
        height = _page_height(page)
        if height > size[1] + 8:
            page.set_viewport_size({"width": size[0], "height": height})
            page.wait_for_timeout(600)
            full_out = out.with_name(out.stem + "_full.png")
            page.screenshot(path=str(full_out))
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.wait_for_timeout(400)
            shots.append(full_out.name)
    return shots


def tour(chromium: Any, url: str, view: str, size: tuple[int, int], args: argparse.Namespace, state: dict) -> None:
    """One session: draw a 7, then every page in turn, a picture of each."""
    width, height = size
    touch = width < TOUCH_BELOW_PX
    context = chromium.new_context(viewport={"width": width, "height": height}, has_touch=touch)
    try:
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(url)
        browser.wait_for_app(page)
        browser.draw_digit(page, "7", browser.touch_stroke if touch else browser.draw_stroke)
        said = browser.read_predictions(page)
        browser.wait_idle(page)
        for title in args.pages:
            t0 = time.perf_counter()
            if title != "Draw":
                browser.go_to_page(page, title)
            if touch:
                browser.set_sidebar(page, False)
            if title == "Race" and not state.get("raced"):
                _play_race(page)
                state["raced"] = True
            browser.wait_idle(page)
            page.wait_for_timeout(700)  # the sidebar's slide, charts drawing
            out = Path(args.out_dir) / f"{view}_{slug(title)}_{width}x{height}.png"
            shots = shoot(page, out, size, args.full)
            print(f"{', '.join(shots)} ({time.perf_counter() - t0:.1f} s){'  ' + str(said) if title == 'Draw' else ''}",
                  flush=True)  # fmt: skip
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(ROOT / "artifacts" / "tour"))
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="WxH, e.g. 1280x720")
    parser.add_argument("--views", nargs="+", default=["simple", "expert"], choices=["simple", "expert"])
    parser.add_argument("--pages", nargs="+", default=PAGES, help="page titles as in the sidebar (Draw first)")
    parser.add_argument("--full", action="store_true", help="also a picture of the whole page")
    args = parser.parse_args()
    if "Draw" in args.pages:
        args.pages = ["Draw", *[p for p in args.pages if p != "Draw"]]

    from playwright.sync_api import sync_playwright

    from vitdemo.lesson import state as lesson_state
    from vitdemo.runs.people import CLI
    from vitdemo.runs.store import Registry

    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitdemo-tour-") as home:
        env = {paths.ENV_HOME: home, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        busy_class(home)
        shared = browser.REPO_ROOT.parent / "shared" / "data"
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        with (
            browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url,
            sync_playwright() as pw,
        ):
            chromium = browser.launch_browser(pw)
            state: dict = {}
            for view in args.views:
                lesson_state.set_class_view(Registry(home), view, CLI)  # new sessions start in it
                for size in args.sizes:
                    tour(chromium, url, view, parse_size(size), args, state)
            chromium.close()
    print(f"done in {time.perf_counter() - t0:.0f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
