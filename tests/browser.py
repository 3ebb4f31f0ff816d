"""Drive the real app: a free port, `streamlit run app.py` in the background (output to a log file), and a
headless Debian Chromium through Playwright. Used by the browser tests and by scripts/screenshot_*.py.

    with serve_app({"VITDEMO_HOME": str(home)}) as base_url, sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(base_url)
        wait_for_app(page)

No pytest here, so scripts can import it too (after putting tests/ on sys.path).
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 720}  # the projector


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (it and anything it started), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def serve_app(
    env: dict[str, str] | None = None,
    *,
    app: str = "app.py",
    log_path: str | os.PathLike | None = None,
    timeout_s: float = 90.0,
    address: str = "127.0.0.1",
    root: str | os.PathLike = REPO_ROOT,
) -> Iterator[str]:
    """Run `streamlit run app` on a free port until the block ends; yields the base URL (on 127.0.0.1).
    `address` is what the server listens on: the loopback only, unless a script needs what a classroom sees.
    `root` is the checkout it runs from (scripts/trust_probes.py runs an older one for its "before" figures).

    `env` is added to this process's environment. The server's output goes to `log_path` (default: a
    temporary file), whose tail is in the error when it does not come up. The server is always stopped.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="streamlit-", suffix=".log")
        os.close(fd)
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "streamlit", "run", app,
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so _stop reaches its children too
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not _healthy(base_url):
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with code {proc.returncode}:\n{log_tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"streamlit did not answer {base_url} within {timeout_s:.0f} s:\n{log_tail(log)}"
                    )
                time.sleep(0.25)
            yield base_url
        finally:
            _stop(proc)


def launch_browser(playwright: Any, **kwargs: Any) -> Any:
    """Headless Debian Chromium (never a downloaded one: no `playwright install`)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, **kwargs)


def wait_for_app(page: Any, timeout_ms: float = 60_000) -> None:
    """Wait until the app has rendered and no script run is in progress."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_selector(  # ":visible": the page's first element may be the hidden client script
        '[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]:visible', timeout=timeout_ms
    )
    wait_idle(page, timeout_ms)


def wait_idle(page: Any, timeout_ms: float = 60_000, settle_ms: int = 500) -> None:
    """Wait until no script run is in progress and the page has stopped changing for `settle_ms`.

    Streamlit streams elements in as the script runs and shows its running indicator only after a
    moment, so "quiet" means: no indicator, no stale (greyed) element, and the same main-area text
    twice `settle_ms` apart.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    main = page.locator('[data-testid="stMain"]')
    last, quiet_since = None, None
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"], [data-stale="true"]').count() > 0
        snapshot = None if busy else main.inner_text()
        if busy or snapshot != last:
            last, quiet_since = snapshot, time.monotonic()
        elif (time.monotonic() - quiet_since) * 1000 >= settle_ms:
            return
        page.wait_for_timeout(100)
    raise TimeoutError("the app kept running or changing")


def draw_stroke(page: Any, box: dict[str, float], points: list[tuple[float, float]], steps: int = 8) -> None:
    """Press, move through `points` (fractions of the box) and release, like a hand with a mouse."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def touch_stroke(page: Any, box: dict[str, float], points: list[tuple[float, float]], steps: int = 8) -> None:
    """The same stroke with a finger: raw touch events through the DevTools protocol (Chromium only)."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    path = [xy[0]]
    for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False):
        path += [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(1, steps + 1)]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": path[0][0], "y": path[0][1]}]})
    for x, y in path[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def draw_digit(page: Any, digit: str, stroke: Any = None) -> None:
    """Draw one of DIGIT_STROKES on the canvas with `stroke` (draw_stroke, the mouse, or touch_stroke)."""
    for points in DIGIT_STROKES[digit]:
        (stroke or draw_stroke)(page, canvas(page).bounding_box(), points)


def click_button(page: Any, name: str) -> None:
    """Click the button called `name` and wait for the page to settle."""
    page.get_by_role("button", name=name).first.click()
    wait_idle(page)


def read_predictions(page: Any, timeout_ms: float = 20_000) -> dict[str, str]:
    """{'ViT': '7', 'CNN': '7'}; 'nothing' for a model that gave no answer (a missing checkpoint, say)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    found = {}
    for model in ("ViT", "CNN"):
        try:
            found[model] = read_prediction(page, model, timeout_ms=timeout_ms)
        except PlaywrightTimeout:
            found[model] = "nothing"
    return found


def set_sidebar(page: Any, expanded: bool) -> None:
    """Open or close the sidebar (it starts closed on narrow screens and on Present)."""
    if sidebar_open(page) == expanded:
        return
    if expanded:
        page.locator('[data-testid="stExpandSidebarButton"]').click()
    else:  # the button shows on hover only
        page.locator('[data-testid="stSidebarCollapseButton"] button').click(force=True)
    page.wait_for_timeout(500)  # the slide


def choose_dataset(page: Any, name: str) -> None:
    """Pick a dataset in the sidebar ('Fashion-MNIST'), opening the sidebar for it and closing it again if
    it was closed."""
    was_open = sidebar_open(page)
    set_sidebar(page, True)
    page.locator('[data-testid="stSidebar"]').get_by_text(name).first.click()
    wait_idle(page)
    set_sidebar(page, was_open)


def go_to_page(page: Any, title: str) -> None:
    """Open another page through the sidebar's navigation (the same session, unlike a new URL)."""
    set_sidebar(page, True)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    wait_for_app(page)


def read_prediction(page: Any, model: str, timeout_ms: float = 30_000) -> str:
    """The label after '<model> predicts' on the page, e.g. read_prediction(page, 'ViT') -> '7'."""
    locator = page.get_by_text(re.compile(rf"^{model} predicts")).first
    locator.wait_for(timeout=timeout_ms)
    text = " ".join(locator.inner_text().split())
    return text.removeprefix(f"{model} predicts").strip()


# --- test drawings ------------------------------------------------------------------------------------
DIGIT_STROKES = {  # strokes as fractions of the canvas, drawn the way people draw these digits
    "1": [[(0.52, 0.18), (0.50, 0.82)]],
    "7": [[(0.30, 0.22), (0.70, 0.22), (0.45, 0.82)]],
}


def stroke_image(strokes: list[list[tuple[float, float]]], size: int = 280, width: int = 20) -> np.ndarray:
    """RGBA (size, size, 4) uint8 with white strokes on black, as the canvas returns it."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round ends, like the canvas pen
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=(255, 255, 255, 255))
    return np.array(image)


def digit_png(digit: str, *, dark_on_light: bool = False, size: int = 280) -> bytes:
    """A PNG file of one of DIGIT_STROKES (as a phone photo of paper would be: dark ink on white, if asked)."""
    gray = stroke_image(DIGIT_STROKES[digit], size)[..., 0]  # (size, size) uint8
    if dark_on_light:
        gray = 255 - gray
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return buf.getvalue()


def canvas(page: Any, timeout_ms: float = 30_000) -> Any:
    """The drawing surface of streamlit-drawable-canvas (Fabric's upper canvas), in the page or an iframe, once
    it is shown (a new canvas stays hidden until it is in place) and sized to the screen (its box the same for
    300 ms)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        direct = page.locator("canvas.upper-canvas:visible")
        if direct.count():
            return _steady(page, direct.first, deadline)
        for frame in page.frames[1:]:
            inner = frame.locator("canvas.upper-canvas:visible")
            if inner.count():
                return _steady(page, inner.first, deadline)
        page.wait_for_timeout(100)
    raise TimeoutError("no drawing canvas (canvas.upper-canvas) on the page")


INK_JS = """el => {  // white pixels on an upper canvas's drawing layer; -1 once the canvas has left the page
    if (!el.isConnected) return -1;
    const lower = el.parentElement && el.parentElement.querySelector("canvas.lower-canvas");
    if (!lower) return -2;
    const d = lower.getContext("2d").getImageData(0, 0, lower.width, lower.height).data;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 128) ink++;
    return ink;
}"""


def canvas_ink(surface: Any) -> int:
    """How many pixels of the canvas `surface` (a locator or element handle of canvas.upper-canvas) are ink;
    -1 when it is no longer on the page."""
    return int(surface.evaluate(INK_JS))


def _steady(page: Any, locator: Any, deadline: float) -> Any:
    """`locator` once its bounding box has not changed for 300 ms (a stroke on a canvas being resized bends)."""
    last = None
    while time.monotonic() < deadline:
        box = locator.bounding_box()
        if box is not None and box == last:
            return locator
        last = box
        page.wait_for_timeout(300)
    return locator


# --- layout checks ---------------------------------------------------------------------------------------------
HIT_JS = """([x, y]) => {
    let el = document.elementFromPoint(x, y);
    while (el && el.shadowRoot) {  // into the canvas component's shadow root
        const inner = el.shadowRoot.elementFromPoint(x, y);
        if (!inner || inner === el) break;
        el = inner;
    }
    return el ? `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}` : "";
}"""


def element_at(page: Any, x: float, y: float) -> str:
    """'tag.class1.class2' of what a touch at (x, y) lands on, looking into shadow roots."""
    return str(page.evaluate(HIT_JS, [x, y]))


def corner_hits(page: Any, box: dict[str, float], inset: float = 2.0) -> list[str]:
    """What each corner of `box` (top-left, top-right, bottom-left, bottom-right), `inset` px inside, lands on."""
    left, top = box["x"] + inset, box["y"] + inset
    right, bottom = box["x"] + box["width"] - inset, box["y"] + box["height"] - inset
    return [element_at(page, x, y) for x, y in ((left, top), (right, top), (left, bottom), (right, bottom))]


def inside_viewport(page: Any, box: dict[str, float] | None, slack: float = 0.5) -> bool:
    """True when `box` (a bounding box) is wholly on screen without scrolling."""
    size = page.viewport_size
    return (
        box is not None
        and box["x"] >= -slack
        and box["y"] >= -slack
        and box["x"] + box["width"] <= size["width"] + slack
        and box["y"] + box["height"] <= size["height"] + slack
    )


def sidebar_open(page: Any) -> bool:
    """True when the sidebar is on screen (collapsed, it slides out to the left)."""
    box = page.locator('[data-testid="stSidebar"]').bounding_box()
    return box is not None and box["x"] + box["width"] > 1
