"""The real app in a real browser: `streamlit run app.py` driven by headless Chromium (marker `browser`)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from browser import (
    DIGIT_STROKES,
    VIEWPORT,
    canvas,
    digit_png,
    draw_stroke,
    read_prediction,
    touch_stroke,
    wait_for_app,
    wait_idle,
)

from vitdemo.views import words

pytestmark = pytest.mark.browser

PROMPT = "Draw a digit on the black canvas"


def predictions_on_page(page: Any) -> int:
    return page.get_by_text(re.compile(r"^(ViT|CNN) predicts")).count()


def test_drawing_with_the_mouse_gets_both_predictions(app_page: Any, mnist_checkpoints: Path) -> None:
    page = app_page
    page.get_by_text(PROMPT).wait_for()  # a blank canvas asks for a digit...
    assert predictions_on_page(page) == 0  # ...and predicts nothing
    surface = canvas(page)
    for stroke in DIGIT_STROKES["7"]:
        draw_stroke(page, surface.bounding_box(), stroke)
    assert read_prediction(page, "ViT") == "7"
    assert read_prediction(page, "CNN") == "7"
    wait_idle(page)
    assert page.get_by_text("on the drawing").count() == 2  # rollout and Grad-CAM overlays
    assert page.get_by_text(words.say("draw", "cnn_map")).is_visible()  # a student's Simple view: plain words...
    assert page.get_by_text("Server time").count() == 0  # ...and no timings

    page.get_by_role("button", name="Clear").click()
    page.get_by_text(PROMPT).wait_for()
    wait_idle(page)
    assert predictions_on_page(page) == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def test_drawing_with_a_finger_works_too(chromium_browser: Any, app_url: str, mnist_checkpoints: Path) -> None:
    context = chromium_browser.new_context(viewport=VIEWPORT, has_touch=True)  # a touch screen or a tablet
    try:
        page = context.new_page()
        page.goto(app_url)
        wait_for_app(page)
        for stroke in DIGIT_STROKES["1"]:
            touch_stroke(page, canvas(page).bounding_box(), stroke)
        assert read_prediction(page, "ViT") == "1"
        assert read_prediction(page, "CNN") == "1"
    finally:
        context.close()


def test_uploading_a_png_gets_both_predictions(app_page: Any, mnist_checkpoints: Path, tmp_path: Path) -> None:
    page = app_page
    page.get_by_role("radio", name=re.compile("Upload")).click()
    wait_idle(page)
    photo = tmp_path / "seven.png"
    photo.write_bytes(digit_png("7", dark_on_light=True))  # dark ink on white paper
    page.locator('input[type="file"]').set_input_files(str(photo))
    assert read_prediction(page, "ViT") == "7"
    assert read_prediction(page, "CNN") == "7"

    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not a picture")
    page.locator('input[type="file"]').set_input_files(str(junk))
    page.get_by_text(re.compile(r"^notes\.png: .*image")).wait_for()  # a clear error, no traceback
    wait_idle(page)
    assert predictions_on_page(page) == 0
    assert page.locator('[data-testid="stException"]').count() == 0


# Marks, in the page, every element container outside the Draw fragment (the sidebar, the page's heading) that is
# greyed out as stale (data-stale="true"): what a student sees when a stroke reruns the whole page.
STALE_WATCH_JS = """() => {
    window.__vdStaleOutside = [];
    const outside = el => el.closest('[data-testid="stSidebar"]') || /ViT vs CNN/.test(el.innerText || "");
    new MutationObserver(records => {
        for (const r of records) {
            const el = r.target;
            if (el.getAttribute("data-stale") === "true" && outside(el))
                window.__vdStaleOutside.push((el.innerText || el.className).slice(0, 60));
        }
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ["data-stale"]});
}"""


def script_runs(frames: list[bytes]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """Each script run the server started, in order: its id -> (the fragments it reran, none for the whole page;
    whether it has finished)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    runs: dict[str, tuple[tuple[str, ...], bool]] = {}
    for payload in frames:
        msg = ForwardMsg.FromString(payload)
        kind, run = msg.WhichOneof("type"), msg.metadata.run
        if kind == "new_session":
            runs[run.script_run_id] = (tuple(run.fragment_ids), False)
        elif kind == "script_finished" and run.script_run_id in runs:
            runs[run.script_run_id] = (runs[run.script_run_id][0], True)
    return runs


def all_finished(page: Any, frames: list[bytes], timeout_s: float = 60) -> None:
    """Wait until every script run the server started has finished (the page's first run may still be sending
    while the page looks settled)."""
    deadline = time.monotonic() + timeout_s
    while not (script_runs(frames) and all(done for _, done in script_runs(frames).values())):
        assert time.monotonic() < deadline, "the script kept running"
        page.wait_for_timeout(100)


def test_a_stroke_reruns_only_the_drawing_not_the_page(
    chromium_browser: Any, app_url: str, mnist_checkpoints: Path
) -> None:
    context = chromium_browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        frames: list[bytes] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda p: isinstance(p, bytes) and frames.append(p)))
        page.goto(app_url)
        wait_for_app(page)
        all_finished(page, frames)
        assert () in [ids for ids, _ in script_runs(frames).values()]  # the page's first run: the whole page
        page.evaluate(STALE_WATCH_JS)
        frames.clear()
        for stroke in DIGIT_STROKES["7"]:
            draw_stroke(page, canvas(page).bounding_box(), stroke)
        assert read_prediction(page, "ViT") == "7"
        wait_idle(page)
        all_finished(page, frames)
        reran = [ids for ids, _ in script_runs(frames).values()]
        assert reran and () not in reran, "a stroke reran the whole page, not only the drawing's fragment"
        assert page.evaluate("window.__vdStaleOutside") == []  # the sidebar and the heading never greyed out
    finally:
        context.close()
