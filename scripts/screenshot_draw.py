"""Screenshot the Draw page at projector size (1280x720) after drawing a digit with the mouse.

    python scripts/screenshot_draw.py                 # -> artifacts/draw.png
    python scripts/screenshot_draw.py --digit 1 --height 1500 --out artifacts/draw_tall.png  # the whole page

Starts `streamlit run app.py` on a free port with VITDEMO_HOME in a temporary folder, draws in headless
Chromium (/usr/bin/chromium) and always stops the server. Uses the same helpers as the browser tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(browser.REPO_ROOT / "artifacts" / "draw.png"))
    parser.add_argument("--digit", default="7", choices=sorted(browser.DIGIT_STROKES))
    parser.add_argument("--height", type=int, default=720, help="window height (the page scrolls inside it)")
    parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    args = parser.parse_args()

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vitdemo-shot-") as home:
        env = {paths.ENV_HOME: home}
        shared = browser.REPO_ROOT.parent / "shared" / "data"  # the team's layout; else vitdemo.paths decides
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            chromium = browser.launch_browser(pw)
            page = chromium.new_page(viewport=browser.VIEWPORT)
            page.set_default_timeout(60_000)
            page.goto(url)
            browser.wait_for_app(page)
            if args.dataset == "fashion":
                page.get_by_text("Fashion-MNIST").first.click()
                browser.wait_idle(page)
            canvas = browser.canvas(page)
            t0 = time.perf_counter()
            for stroke in browser.DIGIT_STROKES[args.digit]:
                browser.draw_stroke(page, canvas.bounding_box(), stroke)
            found = {}
            for model in ("ViT", "CNN"):
                try:
                    found[model] = browser.read_prediction(page, model, timeout_ms=20_000)
                except PlaywrightTimeout:  # no such model (a missing checkpoint): the page says why
                    found[model] = "nothing"
            browser.wait_idle(page)
            elapsed = time.perf_counter() - t0
            page.mouse.move(5, 700)  # no hover highlight in the picture
            if args.height != browser.VIEWPORT["height"]:
                page.set_viewport_size({"width": browser.VIEWPORT["width"], "height": args.height})
                browser.wait_idle(page)
            page.screenshot(path=str(out))
            chromium.close()
    said = ", ".join(f"{model} predicts {label}" for model, label in found.items())
    print(f"drew {args.digit}: {said} ({elapsed:.2f} s in the browser) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
