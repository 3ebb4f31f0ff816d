"""Every page at the sizes a classroom meets, in a real browser: nothing wider than the screen (no sideways
scrolling), no button label cut short, and on a phone the canvas and both answers on one screen.

One `streamlit run app.py` and one headless Chromium for the module; one browser tab per kind of screen (touch:
a phone and a tablet; mouse: the projector and a 1920x1080 screen), which draws a digit on Draw and then visits
every page through the sidebar (the same session, so the drawing is on Present, the lab and Under the hood too).
Each page is checked at both sizes of its tab by resizing the window, not by opening it again: a page load is
most of the cost, and the pages are laid out by CSS and by scripts that follow the window's size. The phone's
own check (canvas and answers on one screen) is made on a page opened at the phone's size. Phones and tablets
get a touch screen and draw with a finger."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from browser import (
    canvas,
    draw_digit,
    draw_stroke,
    go_to_page,
    inside_viewport,
    read_predictions,
    set_sidebar,
    sidebar_open,
    touch_stroke,
    wait_for_app,
    wait_idle,
)

from vitdemo.config import TrainConfig
from vitdemo.runs import points
from vitdemo.runs.store import Registry
from vitdemo.training.watch import WatchRow

pytestmark = pytest.mark.browser

SCREENS = [((390, 844), (820, 1180)), ((1280, 720), (1920, 1080))]  # one tab each: touch, then mouse
TOUCH_BELOW_PX = 1200  # narrower windows are phones and tablets (the sidebar starts closed there too)
PAGES = ["Present", "Read a number", "Robustness lab", "Race", "Train", "Evaluate", "Leaderboard", "Class set",
         "Under the hood"]  # fmt: skip

# Everything on the page wider than the screen, or reaching past its left or right edge, that nothing scrolls or
# clips inside the screen (a wide table scrolls in its own frame: that is fine); and every visible button whose
# label is cut short (an ellipsis, or text wider than the button). The collapsed sidebar waits off screen.
OVERFLOW_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const describe = (el) => {
    const id = el.getAttribute("data-testid") || "";
    const key = [...el.classList].find((c) => c.startsWith("st-key-")) || "";
    const text = (el.innerText || el.getAttribute("aria-label") || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return `${el.tagName.toLowerCase()}${id ? "[" + id + "]" : ""}${key ? "." + key : ""} "${text}"`;
  };
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const sidebarShut = !sidebar || sidebar.getBoundingClientRect().right <= 1;
  const contained = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox !== "visible") {
        const r = a.getBoundingClientRect();
        if (r.left >= -1 && r.right <= vw + 1) return true;
      }
    }
    return false;
  };
  const wide = [];
  for (const el of document.querySelectorAll('[data-testid="stApp"] *')) {
    if (sidebarShut && sidebar && sidebar.contains(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= vw + 1 && r.left >= -1) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.position === "fixed") continue;
    if (!contained(el)) wide.push(`${describe(el)} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  const scroller = [document.scrollingElement, ...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')];
  const scrolls = scroller.filter((el) => el && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "hidden").map(describe);
  const clipper = (el) => {  // the nearest box that cuts off (or scrolls away) what reaches past it
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return a;
    }
    return null;
  };
  const cut = [];
  for (const button of document.querySelectorAll("button")) {
    const r = button.getBoundingClientRect();
    if (r.width === 0 || (sidebarShut && sidebar && sidebar.contains(button))) continue;
    const box = clipper(button);  // half hidden in a row of options: "Your drawing | Test imag"
    const hoverOnly = button.closest('[data-testid="stElementToolbar"]');  // a table's tools, shown on hover
    if (box && !hoverOnly && (r.right > box.getBoundingClientRect().right + 1 || r.left < box.getBoundingClientRect().left - 1)) {
      cut.push(describe(button) + " (cut off by its box)");
      continue;
    }
    for (const t of button.querySelectorAll("p, span, div")) {
      if (t.getBoundingClientRect().width <= 2) continue;  // hidden on purpose (an icon-only button's name)
      if (t.innerText.trim() && t.scrollWidth > t.clientWidth + 1
          && getComputedStyle(t).overflow !== "visible") {
        cut.push(describe(button));
        break;
      }
    }
  }
  const spill = [];  // a watched digit's or a wall tile's text reaching past its own tile: it runs into the next
  for (const tile of document.querySelectorAll(".vd-watch-digit, .vd-wall-tile")) {
    const r = tile.getBoundingClientRect();
    if (r.width === 0) continue;
    for (const t of tile.querySelectorAll("span, b")) {
      const q = t.getBoundingClientRect();
      if (q.width > 0 && (q.left < r.left - 1 || q.right > r.right + 1)) spill.push(describe(tile));
    }
  }
  const under = [];  // the page's title hidden under the top bar (opaque on a phone) when the page opens
  const bar = document.querySelector('[data-testid="stHeader"]');
  const title = document.querySelector('[data-testid="stMain"] h1, [data-testid="stMain"] h2');
  if (bar && title && !/rgba\\(.*, 0\\)$|transparent/.test(getComputedStyle(bar).backgroundColor)) {
    const words = document.createRange();
    words.selectNodeContents(title);
    const top = words.getBoundingClientRect().top, barBottom = bar.getBoundingClientRect().bottom;
    if (top < barBottom - 1) under.push(`${describe(title)} starts at ${Math.round(top)} px, the bar ends at ${barBottom}`);
  }
  return {wide: wide.slice(0, 8), scrolls, cut, spill: spill.slice(0, 8), under};
}"""


def _check(page: Any, where: str) -> None:
    width = page.viewport_size["width"]
    for box in [c.bounding_box() for c in page.locator("canvas.upper-canvas").all()]:  # in the canvas's shadow root
        if box and box["width"] > 0:  # the Read page's wide canvas ran past a phone's edge, clipped, unseen
            assert box["x"] >= -1 and box["x"] + box["width"] <= width + 1, f"{where}: a canvas at {box} is cut off"
    found = page.evaluate(OVERFLOW_JS)
    assert not found["scrolls"], f"{where}: the page scrolls sideways ({found['scrolls']})"
    assert not found["wide"], f"{where}: wider than the screen: {found['wide']}"
    assert not found["cut"], f"{where}: button labels cut short: {found['cut']}"
    assert not found["spill"], f"{where}: text running out of its tile: {found['spill']}"
    assert not found["under"], f"{where}: the title is under the top bar: {found['under']}"


@pytest.fixture(scope="module")
def training_run(app_env: dict[str, str]) -> int:
    """A run training now (this process stands in for its worker), with its answers on the ten watched images:
    Train and Present show it, with its percentages (and the teacher's cancel button)."""
    reg = Registry(app_env["VITDEMO_HOME"])
    run_id = reg.create_run(
        name="a long run name to see where it breaks", kind="vit", dataset="mnist",
        config=TrainConfig(epochs=3).to_dict(), status="running", device="cpu", worker_pid=os.getpid(),
        heartbeat=time.time(), started_at=time.time(),
        progress={"epoch": 2, "step": 50, "total_steps": 120, "loss": 0.4321},
    )  # fmt: skip
    probs = (0.999, 0.5, 0.07, 1.0, 0.0, 0.004, 0.995, 0.5, 0.12, 0.88)  # the widest percentages: "100%", "<1%"
    row = WatchRow(tuple(range(10)), tuple(range(10)), (0, 7, 2, 3, 4, 5, 6, 1, 8, 9), probs, step=50, epoch=1.25)
    points.set_watch(reg, run_id, row.to_dict())
    return run_id


def _resize(page: Any, width: int, height: int) -> None:
    """The window at another size, once the page has laid itself out again (the canvas and the charts follow
    the window's size a moment later). Streamlit opens the sidebar again when a window grows past a phone's
    width: a tablet shows a page with it closed (a page opened there closes it), so it is closed again."""
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(400)
    if width < TOUCH_BELOW_PX and sidebar_open(page):  # a DOM click: Playwright's (forced) one misses it here
        page.evaluate("() => document.querySelector('[data-testid=stSidebarCollapseButton] button').click()")
        page.wait_for_timeout(500)  # the slide
        assert not sidebar_open(page), "the sidebar did not close"
    wait_idle(page, settle_ms=300)


def _phone_fits(page: Any, size: tuple[int, int]) -> None:
    """On a phone the canvas and both answers are on the screen at once, without scrolling."""
    assert inside_viewport(page, canvas(page).bounding_box()), "the canvas is not wholly on screen"
    for box in [loc.bounding_box() for loc in page.locator(".vd-predbox").all()]:
        assert inside_viewport(page, box), f"an answer at {box} is below the fold of a {size} phone"


@pytest.mark.parametrize(
    "sizes", SCREENS, ids=["x".join(map(str, a)) + "+" + "x".join(map(str, b)) for a, b in SCREENS]
)
def test_no_page_is_wider_than_the_screen_and_a_phone_shows_canvas_and_answers(
    chromium_browser: Any, app_url: str, mnist_checkpoints: Path, training_run: int, sizes: tuple
) -> None:
    (width, height), touch = sizes[0], sizes[0][0] < TOUCH_BELOW_PX
    context = chromium_browser.new_context(viewport={"width": width, "height": height}, has_touch=touch)
    page = context.new_page()
    page.set_default_timeout(60_000)
    t0 = time.perf_counter()
    try:
        page.goto(app_url)
        wait_for_app(page)
        draw_digit(page, "7", touch_stroke if touch else draw_stroke)
        assert read_predictions(page) == {"ViT": "7", "CNN": "7"}
        wait_idle(page)
        for i, (w, h) in enumerate(sizes):
            if i:
                _resize(page, w, h)
            if w < 640:
                _phone_fits(page, (w, h))
            _check(page, f"Draw at {w}x{h}")
        order = list(sizes)
        for title in PAGES:
            order.reverse()  # each page opens at the size the last one ended at: one resize a page
            go_to_page(page, title)
            if touch:
                set_sidebar(page, False)  # as a phone or tablet shows it: the sidebar is over the page
            if title == "Train":  # the teacher (a loopback server) sees the run, and "Cancel it" beside it
                page.get_by_role("button", name="Cancel it").wait_for()  # the live part comes last
                wait_idle(page)
            for i, (w, h) in enumerate(order):
                if i:
                    _resize(page, w, h)
                _check(page, f"{title} at {w}x{h}")
    finally:
        context.close()
    print(f"{sizes}: {len(PAGES) + 1} pages at {len(sizes)} sizes in {time.perf_counter() - t0:.1f} s")
