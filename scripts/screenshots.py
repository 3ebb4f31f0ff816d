"""Screenshot the Draw and Present pages after drawing a digit (and Evaluate as it opens), at the sizes a classroom
meets: a projector (1280x720, 1920x1080), a tablet in portrait (820x1180) and a phone (390x844).

    python scripts/screenshots.py                          # -> artifacts/{draw,present,evaluate}_{W}x{H}.png
    python scripts/screenshots.py --dataset fashion --digit 1 --sizes 1280x720
    python scripts/screenshots.py --pages present --clears 2  # two earlier drawings as thumbnails

One `streamlit run app.py` (VITDEMO_HOME in a temporary folder) for all pictures, headless Chromium
(/usr/bin/chromium); tablets and phones get a touch screen and draw with a finger (touch events), the
projector sizes with the mouse. Uses the same helpers as the browser tests.
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402

SIZES = ["1280x720", "1920x1080", "820x1180", "390x844"]
TOUCH_BELOW_PX = 1200  # narrower windows are tablets and phones: a touch screen, drawn on with a finger
PAGES = {"draw": "", "present": "present", "evaluate": "evaluate"}  # page -> URL path
DRAWN = ("draw", "present")  # the pages a digit is drawn on before the picture


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def shoot(chromium: Any, url: str, page_name: str, size: tuple[int, int], args: argparse.Namespace) -> str:
    """One picture: open the page in a fresh session, draw, wait for both answers, save. Returns a summary."""
    width, height = size
    touch = width < TOUCH_BELOW_PX
    context = chromium.new_context(viewport={"width": width, "height": height}, has_touch=touch)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/{PAGES[page_name]}")
        browser.wait_for_app(page)
        if page_name not in DRAWN:
            page.wait_for_timeout(800)  # the sidebar's slide, where it goes
            out = Path(args.out_dir) / f"{page_name}_{width}x{height}.png"
            page.screenshot(path=str(out))
            return f"{out.name}"
        browser.canvas(page)  # settled: sized, and the sidebar gone where it goes
        if args.dataset == "fashion":
            browser.choose_dataset(page, "Fashion-MNIST")
        stroke = browser.touch_stroke if touch else browser.draw_stroke
        for digit in args.earlier:  # drawn, answered and cleared: they become thumbnails
            browser.draw_digit(page, digit, stroke)
            browser.read_predictions(page)
            browser.click_button(page, "Clear")
        browser.draw_digit(page, args.digit, stroke)
        found = browser.read_predictions(page)
        browser.wait_idle(page)
        page.mouse.move(width - 5, height - 5)  # no hover highlight in the picture
        page.wait_for_timeout(300)
        out = Path(args.out_dir) / f"{page_name}_{width}x{height}.png"
        page.screenshot(path=str(out))
        said = ", ".join(f"{model} {label}" for model, label in found.items())
        return f"{out.name}: {said} ({'finger' if touch else 'mouse'})"
    finally:
        context.close()


def busy_class(home: str) -> None:
    """A lesson in full swing in `home`: a run training now (this process stands in for its worker, so the strip
    shows while the pictures are taken) with its ten watched answers, and eight drawings on the class wall."""
    import os

    from vitdemo.classset import store as classset
    from vitdemo.classset.store import Answer, ClassSet
    from vitdemo.config import TrainConfig
    from vitdemo.runs import points
    from vitdemo.runs.people import Actor
    from vitdemo.runs.store import Registry
    from vitdemo.training.watch import WatchRow

    reg = Registry(home)
    run_id = reg.create_run(
        name="cnn for the class", kind="cnn", dataset="mnist", config=TrainConfig(epochs=3).to_dict(),
        status="running", device="cpu", worker_pid=os.getpid(), heartbeat=time.time(), started_at=time.time(),
        progress={"epoch": 2, "step": 50, "total_steps": 120, "loss": 0.4321},
    )  # fmt: skip
    probs = (0.999, 0.5, 0.07, 1.0, 0.0, 0.004, 0.995, 0.5, 0.12, 0.88)
    row = WatchRow(tuple(range(10)), tuple(range(10)), (0, 7, 2, 3, 4, 5, 6, 1, 8, 9), probs, step=50, epoch=1.25)
    points.set_watch(reg, run_id, row.to_dict())
    store = ClassSet(home, max_per_minute=100)
    for i in range(8):
        digit = "7" if i % 2 else "1"
        image = browser.stroke_image(browser.DIGIT_STROKES[digit], width=12 + 2 * i)
        truth = int(digit)
        answers = [Answer("vit", "v", truth if i % 3 else 4, 0.7), Answer("cnn", "c", truth if i % 4 else 2, 0.9)]
        classset.submit(store, image, truth, Actor(f"person:{i}", f"Student {i}"), answers, dataset="mnist")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(ROOT / "artifacts"))
    parser.add_argument("--digit", default="7", choices=sorted(browser.DIGIT_STROKES))
    parser.add_argument("--earlier", nargs="*", default=["1"], help="digits drawn and cleared first (thumbnails)")
    parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="WxH, e.g. 1280x720")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument(
        "--busy", action="store_true", help="a run training now and eight class drawings on the wall (Present)"
    )
    parser.add_argument(
        "--address", default="127.0.0.1", help="what the server listens on; 0.0.0.0 shows Present as in class"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitdemo-shot-") as home:
        env = {paths.ENV_HOME: home}
        if args.busy:
            busy_class(home)
        shared = browser.REPO_ROOT.parent / "shared" / "data"  # the team's layout; else vitdemo.paths decides
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        with (
            browser.serve_app(env, log_path=Path(home) / "streamlit.log", address=args.address) as url,
            sync_playwright() as pw,
        ):
            chromium = browser.launch_browser(pw)
            for size in args.sizes:
                for page_name in args.pages:
                    print(shoot(chromium, url, page_name, parse_size(size), args), flush=True)
            chromium.close()
    print(f"done in {time.perf_counter() - t0:.0f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
