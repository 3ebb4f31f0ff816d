"""The Draw page on a busy class server or a slow device: what a student sees while the server has not answered
yet, or while a new canvas's stylesheet has not loaded (marker `browser`). Both are held back on purpose (the
server's answers on the page's websocket, the stylesheet's request), so "slow" is exact, not timed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser import (
    DIGIT_STROKES,
    VIEWPORT,
    canvas,
    canvas_ink,
    draw_digit,
    draw_stroke,
    read_prediction,
    wait_for_app,
    wait_idle,
)

pytestmark = pytest.mark.browser

PROMPT = "Draw a digit on the black canvas"


class SlowServer:
    """Stands between a page and the app's websocket: while `hold` is on, what the server sends waits, as it
    would behind a queue of other students' reruns; `release` delivers it in order."""

    def __init__(self, page: Any) -> None:
        self.holding = False
        self.waiting: list[str | bytes] = []
        self.page_side: Any = None
        page.route_web_socket(re.compile(r"/_stcore/stream"), self._route)

    def _route(self, ws: Any) -> None:
        self.page_side = ws
        server = ws.connect_to_server()  # what the page sends goes straight on
        server.on_message(self._from_server)

    def _from_server(self, message: str | bytes) -> None:
        if self.holding:
            self.waiting.append(message)
        else:
            self.page_side.send(message)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        for message in self.waiting:
            self.page_side.send(message)
        self.waiting.clear()


class SlowStylesheet:
    """Holds back the canvas component's stylesheet (fetched again for every new canvas) while `hold` is on."""

    def __init__(self, page: Any) -> None:
        self.holding = False
        self.waiting: list[Any] = []
        page.route("**/bidi-components/**/*.css", self._route)

    def _route(self, route: Any) -> None:
        if self.holding:
            self.waiting.append(route)
        else:
            route.continue_()

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        for route in self.waiting:
            route.continue_()
        self.waiting.clear()


@pytest.fixture
def slow_page(chromium_browser: Any, app_url: str) -> Any:
    context = chromium_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    server, styles = SlowServer(page), SlowStylesheet(page)
    page.goto(app_url)
    wait_for_app(page)
    try:
        yield page, server, styles
    finally:
        context.close()


def predictions_on_page(page: Any) -> int:
    return page.get_by_text(re.compile(r"^(ViT|CNN) predicts")).count()


def test_a_stroke_right_after_clear_is_refused_not_drawn_and_then_lost(slow_page: Any, mnist_checkpoints: Path) -> None:
    page, server, _ = slow_page
    draw_digit(page, "7")
    assert read_prediction(page, "ViT") == "7"
    wait_idle(page)
    old = canvas(page).element_handle()
    box, ink_of_the_seven = old.bounding_box(), canvas_ink(old)
    assert ink_of_the_seven > 0

    server.hold()  # the server is busy: the blank canvas Clear asks for is late
    page.get_by_role("button", name="Clear").click()
    for stroke in DIGIT_STROKES["1"]:  # a student starts the next digit at once, on the canvas still shown
        draw_stroke(page, box, stroke)
    page.wait_for_timeout(500)  # a stroke reaches the canvas at once; it is sent 200 ms after the mouse is up
    assert canvas_ink(old) == ink_of_the_seven  # the canvas on its way out took no ink: nothing to vanish later
    assert old.evaluate("el => getComputedStyle(el.closest('.dc-root')).opacity") == "0.35"  # and looks it

    server.release()
    page.get_by_text(PROMPT).wait_for()
    wait_idle(page)
    assert canvas_ink(old) == -1  # replaced by the blank canvas...
    assert predictions_on_page(page) == 0
    draw_digit(page, "1")  # ...which takes strokes at once
    assert read_prediction(page, "ViT") == "1"
    assert read_prediction(page, "CNN") == "1"


def test_an_earlier_drawing_and_undo_refuse_strokes_too_until_their_canvas_comes(
    slow_page: Any, mnist_checkpoints: Path
) -> None:
    page, server, _ = slow_page
    draw_digit(page, "7")
    read_prediction(page, "ViT")
    page.get_by_role("button", name="Clear").click()  # the 7 goes to the gallery
    page.get_by_text(PROMPT).wait_for()
    wait_idle(page)
    for key in ("pad_restore_0", "pad_undo"):  # back to the 7 (a new canvas showing it), then undo it (blank)
        old = canvas(page).element_handle()
        ink = canvas_ink(old)
        server.hold()
        page.locator(f".st-key-{key} button").first.click()
        draw_stroke(page, old.bounding_box(), DIGIT_STROKES["1"][0])
        page.wait_for_timeout(300)
        assert canvas_ink(old) == ink, key
        server.release()
        wait_idle(page)
        assert canvas_ink(old) == -1, key
        assert (canvas_ink(canvas(page)) > 0) == (key == "pad_restore_0"), key


OFFSET_JS = "el => el.getBoundingClientRect().top - el.getRootNode().host.getBoundingClientRect().top"


def test_a_new_canvas_is_hidden_until_it_sits_in_its_place(slow_page: Any, mnist_checkpoints: Path) -> None:
    page, _, styles = slow_page
    draw_digit(page, "7")
    read_prediction(page, "ViT")
    wait_idle(page)
    old = canvas(page).element_handle()

    styles.hold()  # a slow device: the new canvas's stylesheet is late
    page.get_by_role("button", name="Clear").click()
    page.get_by_text(PROMPT).wait_for()  # the server has answered: the new canvas is on the page...
    surface = page.locator("canvas.upper-canvas").first
    page.wait_for_function("el => !el.isConnected", arg=old, timeout=30_000)  # the old canvas leaves (its delta may
    assert canvas_ink(old) == -1  # come after the prompt's on a loaded server), taking its ink with it
    surface.wait_for(state="attached")
    page.wait_for_timeout(300)
    assert surface.evaluate(OFFSET_JS) > 100  # ...unstyled, its surface a canvas height below its place...
    assert not surface.is_visible()  # ...where nobody sees it or draws on it
    draw_stroke(page, surface.bounding_box(), [(0.5, 0.02), (0.5, 0.12)])  # (within the hidden canvas's space)
    assert canvas_ink(surface) == 0

    styles.release()
    shown = canvas(page)  # shown once in place
    assert abs(shown.evaluate(OFFSET_JS)) < 2
    draw_digit(page, "1")
    assert read_prediction(page, "ViT") == "1"
