"""The "Read a number" page in a real browser: draw a number on the wide canvas with the mouse, and both shipped
readers answer, with the detector's boxes and the captioner's attention (marker `browser`). Their accuracy is
measured by `python -m vitdemo evaluate`, not here: this checks that the page draws and reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser import canvas, draw_stroke, go_to_page, inside_viewport, touch_stroke, wait_for_app, wait_idle

pytestmark = pytest.mark.browser

ONE = [(0.5, 0.15), (0.5, 0.85)]  # a stroke, as fractions of one digit's cell
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.4, 0.85)]


INK_EXTENT_JS = """el => {  // the leftmost and rightmost ink, as fractions of the canvas's own (bitmap) width
    const lower = el.parentElement.querySelector("canvas.lower-canvas");
    const d = lower.getContext("2d").getImageData(0, 0, lower.width, lower.height).data;
    let lo = lower.width, hi = -1;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 128) { const x = (i / 4) % lower.width; lo = Math.min(lo, x); hi = Math.max(hi, x); }
    return [lo / lower.width, hi / lower.width];
}"""


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


def test_on_a_phone_the_wide_canvas_fits_the_screen_and_a_finger_draws_on_it(
    chromium_browser: Any, app_url: str, reader_checkpoints: Path
) -> None:
    """It kept its 800 px and ran past a 390 px phone's edge (seen on the screenshots): now it shrinks to the
    column, keeps its 4:1 shape, and a finger's strokes on the smaller canvas still reach the readers."""
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(app_url.rstrip("/") + "/read")
        wait_for_app(page)
        surface = canvas(page)
        box = surface.bounding_box()
        assert inside_viewport(page, box) and abs(box["width"] / box["height"] - 4) < 0.1, box
        for cell, stroke in enumerate([ONE, SEVEN, ONE]):
            touch_stroke(page, box, in_cell(stroke, cell + 1))
        left, right = surface.evaluate(INK_EXTENT_JS)  # where the ink is in the full-size picture the readers get
        assert 0.2 < left < 0.27 and 0.56 < right < 0.63, (left, right)  # cells 1 to 3 of 6, as drawn
        page.get_by_text("Detector (the CNN way):").first.wait_for(timeout=60_000)
        page.get_by_text("Captioner (the ViT way):").first.wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        context.close()


def test_present_reads_a_whole_number_on_the_projector(
    chromium_browser: Any, app_url: str, reader_checkpoints: Path
) -> None:
    """Present's "Whole number": at 1280x720 the wide canvas, the join panel and both readers' answers share one
    screen, and a number drawn there is read by both."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(app_url.rstrip("/") + "/present")
        wait_for_app(page)
        canvas(page)  # the digit canvas first
        page.get_by_role("button", name="Whole number").click()
        page.get_by_text("Write a number of 1 to 8 digits on the wide canvas").wait_for()
        surface = canvas(page)
        box = surface.bounding_box()
        assert abs(box["width"] / box["height"] - 4) < 0.1 and box["width"] >= 600, box  # wide, and large
        for cell, stroke in enumerate([ONE, SEVEN, ONE]):
            draw_stroke(page, box, in_cell(stroke, cell + 1))
        for name in ("Detector (the CNN way):", "Captioner (the ViT way):"):
            answer = page.get_by_text(name).first
            answer.wait_for(timeout=60_000)
            assert inside_viewport(page, answer.bounding_box()), name  # no scrolling to see the answers
        wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.get_by_role("button", name="One digit").click()
        page.get_by_role("button", name="Whole number").wait_for()  # the ViT and the CNN are back
    finally:
        context.close()
