"""The lesson in a real browser (issue 24), where the browser matters: a student's open page picks up the
teacher's new step by itself (the banner's fragment polls; no reload), the teacher's Next moves the class on,
and a click on a confusion-matrix cell brings its images, below the fold, into view."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import browser as helpers
import pytest

from vitdemo.lesson import state, steps
from vitdemo.runs.people import Actor
from vitdemo.runs.store import Registry

pytestmark = pytest.mark.browser
PASSWORD = "s3cret"
TEACHER = Actor("person:999", "Ms Smith", teacher=True)
BANNER_WAIT_S = 12  # the banner polls every 4 s; a busy 2-core machine answers in a few more


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, checkpoints_dir: Path) -> dict[str, str]:
    """A class server: the teacher's role locked with a password."""
    home = tmp_path_factory.mktemp("lesson-home")
    return {
        "VITDEMO_HOME": str(home),
        "VITDEMO_DATA_DIR": str(data_dir),
        "VITDEMO_CHECKPOINTS": str(checkpoints_dir),
        "VITDEMO_TEACHER_PASSWORD": PASSWORD,
    }


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport=helpers.VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    helpers.wait_for_app(page)
    return page


def banner(page: Any, step: steps.Step) -> Any:
    return page.get_by_text(steps.banner_text(step), exact=True)


def test_a_students_page_follows_the_teachers_steps_without_a_reload(
    chromium_browser: Any, app_url: str, app_env: dict[str, str]
) -> None:
    reg = Registry(app_env["VITDEMO_HOME"])
    student = open_page(chromium_browser, app_url.rstrip("/") + "/classset")
    teacher = open_page(chromium_browser, app_url)
    try:
        assert student.get_by_text(re.compile(r"^Step \d of 5")).count() == 0  # no lesson yet
        state.set_step(reg, "draw", TEACHER)  # the teacher starts it (from the sidebar, or here)
        banner(student, steps.BY_KEY["draw"]).wait_for(timeout=BANNER_WAIT_S * 1000)  # by itself, no reload
        link = student.get_by_role("link", name=re.compile("Go to Draw"))
        link.wait_for(state="visible", timeout=10_000)  # the banner's link (it may render a moment after its text)

        teacher.get_by_text("Teacher", exact=True).click()  # the sidebar's unlock
        teacher.get_by_label("Teacher password").fill(PASSWORD)
        teacher.get_by_role("button", name=re.compile("^Unlock")).click()
        helpers.wait_idle(teacher)
        teacher.get_by_role("button", name=re.compile("Next: Where they look")).click()
        teacher.wait_for_url(re.compile(r"/draw$|:\d+/?$"))
        helpers.wait_idle(teacher)
        assert state.current_step(reg) == steps.BY_KEY["look"]
        started = time.monotonic()
        banner(student, steps.BY_KEY["look"]).wait_for(timeout=BANNER_WAIT_S * 1000)
        print(f"\nthe student's banner followed the teacher's Next in {time.monotonic() - started:.1f} s")  # noqa: T201
        student.get_by_role("link", name=re.compile("Go to Draw")).click()
        student.wait_for_url(re.compile(r"/draw$|:\d+/?$"))  # Draw is the default page: the bare address
        helpers.wait_idle(student)
        assert student.get_by_role("heading", name=re.compile("^ViT vs CNN")).count() == 1
    finally:
        state.set_step(reg, None, TEACHER)
        student.context.close()
        teacher.context.close()


def test_a_confusion_cell_click_scrolls_to_its_images(chromium_browser: Any, app_url: str) -> None:
    page = open_page(chromium_browser, app_url.rstrip("/") + "/evaluate")
    try:
        page.get_by_text("Rows: the true class", exact=False).or_(
            page.get_by_text("Each row is the true")
        ).first.wait_for(timeout=120_000)  # the test set classified
        helpers.wait_idle(page, timeout_ms=120_000)
        gallery = page.locator(".st-key-vd_cell_gallery")
        assert gallery.bounding_box()["y"] > helpers.VIEWPORT["height"]  # below the fold
        table = page.locator('[class*="st-key-cm_"] table.vd-cm').first  # the matrix
        table.scroll_into_view_if_needed()
        unscrolled = gallery.bounding_box()["y"]
        assert unscrolled > helpers.VIEWPORT["height"] / 2  # with the matrix in view, the images are still low
        cell = table.get_by_role("button", name="true 1, predicted 7:", exact=False)
        cell.click()  # one cell
        assert cell.get_attribute("aria-pressed") == "true"  # pressed at once, before the server answers
        page.get_by_text(re.compile(r"^True 1, predicted 7: ")).first.wait_for(timeout=60_000)  # that cell's images
        helpers.wait_idle(page, timeout_ms=60_000)
        page.wait_for_timeout(1500)  # the smooth scroll
        top = gallery.bounding_box()["y"]
        assert -2 <= top < helpers.VIEWPORT["height"] / 2, top  # its heading near the top of the window
    finally:
        page.context.close()
