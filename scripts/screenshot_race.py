"""Screenshot the Race page: the teacher's race in Present mode on a projector (1280x720 and 1920x1080), the
teacher's own page, a student's phone (390x844) watching it read-only, and Present's link to the race.

    python scripts/screenshot_race.py --out /tmp/race-shots

Starts `streamlit run app.py` with a teacher password and VITDEMO_HOME in a temporary folder; in headless
Chromium the teacher unlocks their role, presses Play, lets the race run, turns the learning rate up ten times
(three notches of its slider) and the label noise up, then the pictures are taken. Always stops the server.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402

PASSWORD = "teacher-demo"
VIEWPORTS = {
    "1280x720": {"width": 1280, "height": 720},
    "1920x1080": {"width": 1920, "height": 1080},
    "390x844": {"width": 390, "height": 844},
}


def open_race(page: Any, url: str, present: bool = False) -> None:
    """The Race page, once the race is ready and its chart drawn (the first chart waits for Plotly's script)."""
    page.goto(url.rstrip("/") + "/race" + ("?present=1" if present else ""))
    browser.wait_for_app(page)
    page.get_by_text(re.compile(r"^(Ready|Training|Paused)")).first.wait_for(timeout=120_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg:visible').first.wait_for(timeout=60_000)


def unlock_teacher(page: Any) -> None:
    browser.set_sidebar(page, True)
    page.get_by_text("Teacher", exact=True).first.click()
    page.get_by_label("Teacher password").fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    page.get_by_role("button", name="Leave teacher mode").wait_for()
    browser.wait_idle(page)


def turn(page: Any, label: str, notches: int) -> None:
    """Move a select slider `notches` to the right with the keyboard, one notch at a time."""
    thumb = page.get_by_role("slider", name=label)
    thumb.focus()
    for _ in range(notches):
        thumb.press("ArrowRight")
        page.wait_for_timeout(150)
    page.wait_for_timeout(1500)


def scroll_to(page: Any, selector: str) -> None:
    """Scroll the first `selector` to the top (by script: the live fragment redraws it every second)."""
    page.evaluate(f"document.querySelector({selector!r}).scrollIntoView()")
    page.wait_for_timeout(300)


def shoot(page: Any, out: Path, name: str) -> None:
    page.wait_for_timeout(1200)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="artifacts", help="folder for the PNG files")
    parser.add_argument("--race-s", type=float, default=12.0, help="seconds of racing before the first picture")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home:
        env = {"VITDEMO_HOME": home, "VITDEMO_TEACHER_PASSWORD": PASSWORD,
               "VITDEMO_DATA_DIR": str(paths.data_root()), "VITDEMO_CHECKPOINTS": str(paths.shipped_dir())}  # fmt: skip
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            chromium = browser.launch_browser(pw)
            teacher = chromium.new_context(viewport=VIEWPORTS["1280x720"]).new_page()
            open_race(teacher, url)
            unlock_teacher(teacher)
            teacher.get_by_role("button", name="Play").click()
            teacher.wait_for_timeout(args.race_s * 1000)
            turn(teacher, "Learning rate", 3)  # 2e-3 -> 2e-2: x10
            teacher.wait_for_timeout(6000)
            browser.set_sidebar(teacher, False)
            shoot(teacher, out, "race_teacher_1280x720")
            teacher.get_by_text("Present mode", exact=True).click()
            browser.wait_idle(teacher)
            shoot(teacher, out, "race_present_1280x720")
            big = chromium.new_context(viewport=VIEWPORTS["1920x1080"]).new_page()
            open_race(big, url, present=True)
            unlock_teacher(big)
            browser.set_sidebar(big, False)
            shoot(big, out, "race_present_1920x1080")
            phone = chromium.new_context(viewport=VIEWPORTS["390x844"], is_mobile=True, has_touch=True).new_page()
            open_race(phone, url)
            shoot(phone, out, "race_student_390x844")
            scroll_to(phone, ".vd-watch")
            shoot(phone, out, "race_student_390x844_digits")
            scroll_to(phone, ".vd-race-knobs")
            shoot(phone, out, "race_student_390x844_knobs")
            teacher.goto(url.rstrip("/") + "/present")
            browser.wait_for_app(teacher)
            teacher.get_by_text(re.compile(r"^Race: ")).wait_for(timeout=60_000)
            shoot(teacher, out, "present_with_race_1280x720")
            chromium.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
