"""Screenshot the Robustness lab at projector size (1280x720) and on a phone (390x844), after turning the sliders
and measuring the sweep in the page.

    python scripts/screenshot_lab.py                    # -> artifacts/lab_1280_top.png, lab_1280_sweep.png, ...

Starts `streamlit run` on a free port with VITDEMO_HOME in a temporary folder (app.py when it lists app_pages/lab.py,
else a navigation script of its own with the Draw and Lab pages), drives headless Chromium (/usr/bin/chromium)
and always stops the server. The sweep is measured by the server itself (the button on the page), so the time it
prints is the page's time on this machine.
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

PHONE = {"width": 390, "height": 844}
NAVIGATION = """
import streamlit as st
from vitdemo.ui import shell

shell.page_setup()
page = st.navigation([
    st.Page({draw!r}, title="Draw", icon=":material/draw:", default=True),
    st.Page({lab!r}, title="Robustness lab", icon=":material/tune:"),
])
shell.sidebar()
page.run()
"""


def app_script(folder: Path) -> str:
    """app.py if it lists the lab page, else a navigation script in `folder` with the Draw and Lab pages."""
    if "app_pages/lab.py" in (ROOT / "app.py").read_text():
        return "app.py"
    script = folder / "lab_app.py"
    script.write_text(
        NAVIGATION.format(draw=str(ROOT / "app_pages" / "draw.py"), lab=str(ROOT / "app_pages" / "lab.py"))
    )
    return str(script)


def turn_slider(page, index: int, presses: int) -> None:  # noqa: ANN001 (a Playwright page)
    """Move the index-th slider of the main area by `presses` steps with the keyboard, as a person could."""
    thumb = page.locator('[data-testid="stMain"] [data-testid="stSlider"] input[type="range"]').nth(index)
    thumb.focus()
    for _ in range(abs(presses)):
        page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")
    browser.wait_idle(page)


def close_sidebar(page) -> None:  # noqa: ANN001 (a Playwright page)
    """Fold the sidebar away, as a phone user does first (it opens over the page on a narrow screen)."""
    button = page.locator('[data-testid="stSidebarCollapseButton"] button')
    if button.count():
        button.first.click()
        browser.wait_idle(page)


def to_the_sweep(page) -> None:  # noqa: ANN001 (a Playwright page)
    """Scroll the sweep's heading to the top of the window."""
    page.get_by_text("How accuracy falls").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)


def tall(page, path: Path, height: int = 2400) -> None:  # noqa: ANN001 (a Playwright page)
    """The whole page in one picture: Streamlit scrolls inside its main area, so make the window tall instead."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.locator('[data-testid="stMain"]').evaluate("e => e.scrollTo(0, 0)")
    browser.wait_idle(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "artifacts"), help="folder for the PNG files")
    parser.add_argument("--sweep-timeout", type=float, default=600, help="seconds to wait for the sweep")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vitdemo-shot-") as home:
        env = {paths.ENV_HOME: home, "PYTHONPATH": str(ROOT)}
        shared = ROOT.parent / "shared" / "data"  # the team's layout; else vitdemo.paths decides
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        app = app_script(Path(home))
        with browser.serve_app(env, app=app, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            chromium = browser.launch_browser(pw)
            page = chromium.new_page(viewport=browser.VIEWPORT)
            page.set_default_timeout(120_000)
            page.goto(f"{url}/lab")
            browser.wait_for_app(page, 120_000)
            found = {m: browser.read_prediction(page, m) for m in ("ViT", "CNN")}
            turn_slider(page, 2, 6)  # rotate +30 degrees
            turn_slider(page, 4, 2)  # one stroke step thicker
            turned = {m: browser.read_prediction(page, m) for m in ("ViT", "CNN")}
            page.mouse.move(5, 700)
            page.screenshot(path=str(out / "lab_1280_top.png"))
            t0 = time.perf_counter()
            page.get_by_role("button", name="Measure how accuracy falls").click()
            page.get_by_text("Averaged over each range").wait_for(timeout=args.sweep_timeout * 1000)
            waited = time.perf_counter() - t0
            browser.wait_idle(page, 120_000)
            to_the_sweep(page)
            page.screenshot(path=str(out / "lab_1280_sweep.png"))
            sentence = page.get_by_text("Averaged over each range").inner_text()
            tall(page, out / "lab_1280_full.png")

            phone = chromium.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            phone.set_default_timeout(120_000)
            phone.goto(f"{url}/lab")
            browser.wait_for_app(phone, 120_000)
            phone.get_by_text("Averaged over each range").wait_for()  # measured once, kept for every visitor
            close_sidebar(phone)
            phone.screenshot(path=str(out / "lab_390_top.png"))
            to_the_sweep(phone)
            phone.screenshot(path=str(out / "lab_390_sweep.png"))
            tall(phone, out / "lab_390_full.png")
            chromium.close()
    print(f"predictions {found}, after +30 degrees and +1 stroke step {turned}")
    print(f"sweep on the page: {waited:.1f} s from the click to the figure")
    print(sentence)
    print(f"-> {out}/lab_1280_*.png, {out}/lab_390_*.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
