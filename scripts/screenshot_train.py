"""Screenshot the Train page of a class: a student with a run training, and the teacher, on a projector
(1280x720) and on a phone (390x844).

    python scripts/screenshot_train.py            # -> artifacts/train_{student,teacher}_{1280x720,390x844}.png

Starts `streamlit run app.py` with a teacher password and VITDEMO_HOME in a temporary folder; in headless
Chromium a student gives her name and queues a small CNN (trained by the real worker), the teacher unlocks
their role in the sidebar. Always stops the server (and the worker exits 5 s after its last run).
"""

from __future__ import annotations

import argparse
import os
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
SIZES = {"1280x720": {"width": 1280, "height": 720}, "390x844": {"width": 390, "height": 844}}


def set_number(page: Any, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    browser.wait_idle(page)


def give_name(page: Any, name: str) -> str:
    """Type a name into the Train page's form; returns the address, which now holds the token."""
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="That's me").click()
    page.wait_for_url(re.compile(r"who="))
    browser.wait_idle(page)
    return page.url


def student_run(page: Any, url: str) -> str:
    """Ana queues a 6-epoch CNN on 10,000 images (a minute or two: it still trains while the pictures are
    taken) and waits until it trains; returns her address."""
    page.goto(url.rstrip("/") + "/train")
    browser.wait_for_app(page)
    address = give_name(page, "Ana")
    page.get_by_role("button", name="Preset: fast demo").click()
    browser.wait_idle(page)
    page.get_by_text("CNN", exact=True).first.click()
    browser.wait_idle(page)
    set_number(page, "Epochs", 6)
    page.get_by_label("Run name (optional)").fill("ana-cnn")
    page.get_by_label("Run name (optional)").press("Enter")
    browser.wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"step \d")).first.wait_for(timeout=120_000)  # the worker is training it
    return address


def unlock_teacher(page: Any, url: str) -> None:
    page.goto(url)
    browser.wait_for_app(page)
    page.get_by_text("Teacher", exact=True).first.click()
    page.get_by_label("Teacher password").fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    page.get_by_role("button", name="Leave teacher mode").wait_for()
    page.get_by_role("link", name="Train", exact=True).click()
    page.wait_for_url(re.compile(r"/train"))
    browser.wait_for_app(page)
    give_name(page, "Ms Smith")
    page.get_by_text("Class settings (teacher)").first.click()
    browser.wait_idle(page)


def shoot(page: Any, out: Path, size: dict[str, int], focus: str) -> None:
    """The page at `size` from its top, then scrolled to `focus` (a heading's text), then 2,000 px tall."""
    page.set_viewport_size(size)
    browser.wait_idle(page)
    page.mouse.move(2, 2)
    page.get_by_role("heading", name="Train a model").scroll_into_view_if_needed()
    page.screenshot(path=str(out))
    page.get_by_text(focus, exact=True).first.scroll_into_view_if_needed()
    page.screenshot(path=str(out.with_name(f"{out.stem}_{focus.split()[0].lower()}.png")))
    page.set_viewport_size({"width": size["width"], "height": 2000})
    browser.wait_idle(page)
    page.get_by_role("heading", name="Train a model").scroll_into_view_if_needed()
    page.screenshot(path=str(out.with_name(f"{out.stem}_tall.png")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(browser.REPO_ROOT / "artifacts"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vitdemo-shot-") as home:
        env = {paths.ENV_HOME: home, "VITDEMO_TEACHER_PASSWORD": PASSWORD, "VITDEMO_WORKER_IDLE_S": "5"}
        shared = browser.REPO_ROOT.parent / "shared" / "data"
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            chromium = browser.launch_browser(pw)
            student = chromium.new_context(viewport=browser.VIEWPORT).new_page()
            student.set_default_timeout(60_000)
            address = student_run(student, url)
            teacher = chromium.new_context(viewport=browser.VIEWPORT).new_page()
            teacher.set_default_timeout(60_000)
            unlock_teacher(teacher, url)
            for name, size in SIZES.items():
                shoot(student, out_dir / f"train_student_{name}.png", size, "Class queue")
                shoot(teacher, out_dir / f"train_teacher_{name}.png", size, "Class settings (teacher)")
            reload = chromium.new_context(viewport=browser.VIEWPORT).new_page()
            reload.goto(address)  # a reload of Ana's address: still Ana, no name asked
            browser.wait_for_app(reload)
            kept = reload.get_by_label("Your name").count() == 0 and reload.get_by_text("You: Ana").count() >= 1
            print(f"reloaded {address.split('?')[0]}: name asked {reload.get_by_label('Your name').count()} times, "
                  f"'You: Ana' shown {reload.get_by_text('You: Ana').count()} times")  # fmt: skip
            chromium.close()
    print(f"screenshots in {out_dir}; reloading Ana's address keeps her name: {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
