"""The "Read a number" page in a real browser: draw a number on the wide canvas with the mouse, and both shipped
readers answer, with the detector's boxes and the captioner's attention (marker `browser`). Their accuracy is
measured by `python -m vitdemo evaluate`, not here: this checks that the page draws and reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser import canvas, draw_stroke, go_to_page, wait_for_app, wait_idle

pytestmark = pytest.mark.browser

ONE = [(0.5, 0.15), (0.5, 0.85)]  # a stroke, as fractions of one digit's cell
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.4, 0.85)]


def in_cell(points: list[tuple[float, float]], cell: int, cells: int = 6) -> list[tuple[float, float]]:
    """A digit's stroke placed in cell `cell` of `cells` along the wide canvas."""
    return [((cell + x) / cells, y) for x, y in points]


@pytest.fixture(scope="module")
def reader_checkpoints(checkpoints_dir: Path) -> Path:
    from vitdemo.numbers.analyze import SHIPPED

    missing = [name for name in SHIPPED.values() if not (checkpoints_dir / name).is_file()]
    if missing:
        pytest.skip(f"needs the shipped readers: {', '.join(missing)} not in {checkpoints_dir}")
    return checkpoints_dir


def test_a_number_drawn_with_the_mouse_is_read_by_both_readers(app_page: Any, reader_checkpoints: Path) -> None:
    page = app_page
    go_to_page(page, "Read a number")
    page.get_by_text("Write a number of 1 to 8 digits, upload").wait_for()
    surface = canvas(page)
    box = surface.bounding_box()
    assert box["width"] > 3 * box["height"]  # the wide canvas
    for cell, stroke in enumerate([ONE, SEVEN, ONE]):
        draw_stroke(page, box, in_cell(stroke, cell + 1))
    page.get_by_text("Detector (the CNN way):").first.wait_for(timeout=60_000)
    page.get_by_text("Captioner (the ViT way):").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Each box: the digit found there").count() == 1
    assert page.get_by_text("Cross-attention, all layers and heads averaged").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0


def test_on_a_phone_the_wide_canvas_fits_the_screen_and_still_reads(
    chromium_browser: Any, app_url: str, reader_checkpoints: Path
) -> None:
    # The wide canvas was 800 px wide on a 390 px phone: half of it off the screen, the page scrolling sideways.
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    try:
        _phone_reads(context.new_page(), app_url)
    finally:
        context.close()


def _phone_reads(page: Any, app_url: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(app_url)
    wait_for_app(page)
    go_to_page(page, "Read a number")
    page.get_by_text("Write a number of 1 to 8 digits, upload").wait_for()
    box = canvas(page).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 300
    assert abs(box["width"] / box["height"] - 4) < 0.05  # still 4:1, as the readers' 160x32
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for cell, stroke in enumerate([SEVEN, ONE]):
        draw_stroke(page, box, in_cell(stroke, cell + 2))
    page.get_by_text("Detector (the CNN way):").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
