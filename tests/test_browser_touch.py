"""Tablets, phones and the projector in a real browser: one `streamlit run app.py` for the module, headless
Chromium with a touch screen where a classroom has one, strokes sent as raw touch events (DevTools protocol)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import (
    canvas,
    choose_dataset,
    corner_hits,
    draw_digit,
    draw_stroke,
    go_to_page,
    inside_viewport,
    read_predictions,
    sidebar_open,
    touch_stroke,
    wait_for_app,
    wait_idle,
)
from PIL import Image

pytestmark = pytest.mark.browser

# A 1 on the canvas's right edge, started on its top edge: where the canvas component's invisible toolbar
# used to swallow the touch (a 4 or a 7 begun near the top drew nothing).
TOP_EDGE_STROKE = [(0.82, 0.004), (0.80, 0.90)]
UPPER = "canvas.dc-canvas.upper-canvas"  # Fabric's drawing surface
EMPTY_PROMPT = re.compile(r"^Draw a digit|is waiting for a drawing$")


def _open(browser: Any, url: str, size: tuple[int, int], *, touch: bool = True) -> Any:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, has_touch=touch)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_for_app(page)
    canvas(page)  # once it stays put, the page has settled (the sidebar has slid away, where it does)
    return page


def _check_pad(page: Any) -> dict[str, float]:
    """The canvas wholly on screen, sized to it, nothing over any corner; Undo and Clear visible. Its box."""
    box = canvas(page).bounding_box()
    width = page.viewport_size["width"]
    assert inside_viewport(page, box), f"canvas {box} is not wholly on a {page.viewport_size} screen"
    assert box["width"] >= min(280, 0.85 * width), f"canvas {box['width']:.0f} px wide on a {width} px screen"
    assert corner_hits(page, box) == [UPPER] * 4  # no toolbar, column or header over it
    for name in ("Undo", "Clear"):
        assert inside_viewport(page, page.get_by_role("button", name=name).first.bounding_box()), name
    return box


def _canvas_image(page: Any) -> np.ndarray:
    """(H, W, 4) what the canvas holds (the image the models are sent)."""
    data_url = page.locator("div.canvas-container canvas.lower-canvas").first.evaluate("c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def _top_row_ink(page: Any) -> float:
    """The brightest pixel of the canvas image's top 4 rows, 0..255."""
    return float(_canvas_image(page)[:4, :, :3].max())


def _ink(page: Any) -> int:
    """How many of the canvas's pixels are ink."""
    return int((_canvas_image(page)[..., 0] > 128).sum())


@pytest.mark.parametrize("size", [(820, 1180), (1180, 820), (390, 844)], ids=["tablet", "landscape", "phone"])
def test_a_finger_draws_from_the_top_edge_on_draw_and_present(
    chromium_browser: Any, app_url: str, mnist_checkpoints: Path, size: tuple[int, int]
) -> None:
    page = _open(chromium_browser, app_url, size)
    try:
        for path in ("", "present"):
            if path:
                page.goto(f"{app_url}/{path}")
                wait_for_app(page)
                canvas(page)
            assert not sidebar_open(page), "the sidebar starts collapsed on a narrow screen"
            box = _check_pad(page)
            touch_stroke(page, box, TOP_EDGE_STROKE)  # starts 1 px below the top edge, under the old toolbar
            found = read_predictions(page)
            assert "nothing" not in found.values(), f"{path or 'draw'}: no prediction after a stroke: {found}"
            assert _top_row_ink(page) > 200  # the stroke begins on the very top rows
            assert _check_pad(page) == box  # a prediction does not move or cover the canvas
            if not path:  # (the same buttons on Present: once is enough for the clock)
                page.get_by_role("button", name="Undo").first.tap()  # a big button for a finger
                page.get_by_text(EMPTY_PROMPT).first.wait_for()
                wait_idle(page)
                assert page.get_by_text(re.compile(r"^(ViT|CNN) predicts")).count() == 0
    finally:
        page.context.close()


def _boxes(page: Any, selector: str) -> list[dict[str, float]]:
    return [loc.bounding_box() for loc in page.locator(selector).all()]


def test_present_fits_a_projector_and_grows_with_it(
    chromium_browser: Any, app_url: str, mnist_checkpoints: Path
) -> None:
    page = _open(chromium_browser, f"{app_url}/present", (1280, 720), touch=False)
    try:
        assert not sidebar_open(page)
        draw_digit(page, "7")
        assert read_predictions(page) == {"ViT": "7", "CNN": "7"}
        wait_idle(page)
        parts = {
            "canvas": [canvas(page).bounding_box()],
            "predictions": _boxes(page, ".vd-predbox"),
            "bars": _boxes(page, ".vd-bars"),
            "overlays": _boxes(page, ".vd-map img"),
            "colour scales": _boxes(page, ".vd-scale"),
        }
        for name, boxes in parts.items():
            assert len(boxes) == (1 if name == "canvas" else 2), name
            for box in boxes:
                assert inside_viewport(page, box), f"{name} {box} is below the fold or off screen at 1280x720"
        label_px = float(page.locator(".vd-label").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
        assert label_px >= 48  # the answer reads from the back of the room

        page.set_viewport_size({"width": 1920, "height": 1080})
        page.wait_for_timeout(1500)
        assert canvas(page).bounding_box()["width"] >= 1.3 * parts["canvas"][0]["width"]
        assert _boxes(page, ".vd-map img")[0]["width"] >= 1.3 * parts["overlays"][0]["width"]
        for box in _boxes(page, ".vd-scale") + _boxes(page, ".vd-bars"):
            assert inside_viewport(page, box)

        ink = _ink(page)  # Undo builds the canvas again from the drawing before the last stroke
        draw_stroke(page, canvas(page).bounding_box(), [(0.15, 0.92), (0.85, 0.92)])
        wait_idle(page)
        assert _ink(page) > ink
        page.get_by_role("button", name="Undo").click()
        wait_idle(page)
        assert _ink(page) == ink and read_predictions(page) == {"ViT": "7", "CNN": "7"}
    finally:
        page.context.close()


def _single_line(page: Any, selector: str) -> list[str]:
    """The texts of `selector`'s elements that the browser broke over more than one line."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.getClientRects().length > 1 || e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent)"
    )


def _fashion_png(label: int, data_dir: Path) -> bytes:
    from vitdemo.data import load_raw

    split = load_raw("fashion", train=False, data_dir=str(data_dir))
    index = int(np.flatnonzero(split.labels.numpy() == label)[0])
    buf = io.BytesIO()
    Image.fromarray(split.images[index].numpy()).save(buf, format="PNG")  # (28, 28) uint8
    return buf.getvalue()


def test_fashion_names_never_break_mid_word(
    chromium_browser: Any, app_url: str, checkpoints_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    if not (checkpoints_dir / "vit_fashion.safetensors").is_file():
        pytest.skip("needs the shipped Fashion-MNIST checkpoints")
    page = _open(chromium_browser, app_url, (820, 1180))
    try:
        choose_dataset(page, "Fashion-MNIST")
        page.get_by_role("radio", name=re.compile("Upload")).click()
        wait_idle(page)
        photo = tmp_path / "trouser.png"
        photo.write_bytes(_fashion_png(1, data_dir))  # a test-set trouser: the longest names break first
        page.locator('input[type="file"]').set_input_files(str(photo))
        assert read_predictions(page)["ViT"] == "Trouser"
        wait_idle(page)
        assert _single_line(page, ".vd-label") == []  # the old page showed "Trouse / r"

        go_to_page(page, "Present")  # in the same session: still Fashion-MNIST
        draw_digit(page, "1", touch_stroke)
        read_predictions(page)
        wait_idle(page)
        assert page.locator(".vd-bar-name").count() == 20
        assert _single_line(page, ".vd-bar-name, .vd-label") == []
    finally:
        page.context.close()
