"""What the drawing canvas may send, checked before anything is decoded or kept. No Streamlit here.

The canvas component (streamlit-drawable-canvas) sends its state from the browser: the Fabric.js objects (one per
stroke) and the canvas as a PNG data URL. A page script sees whatever a client sends there, not only what the
component would: one scripted message carried an 8000x8000 PNG (0.35 MB that decode to 256 MB, 14 s and 2 GB
at the peak) or a 12.5 MB stroke list. Three bounds, each refused with one sentence (`CanvasRefused`):

- the whole message: Streamlit's `server.maxWidgetStateSize` (1 MB in .streamlit/config.toml) closes a websocket
  whose message is larger, before it is parsed;
- the PNG: its bytes, then its size in pixels read from its header (`load_image` decodes nothing larger);
- the strokes: how many objects, and their size as JSON, counted by a walk that stops as soon as the bound is
  passed (a list of a million points costs a few microseconds to refuse, not a copy).

What a real drawing weighs (measured with Chromium's mouse): a whole message of 10 kB for a 7; 110 kB after one
scribble of 3,200 mouse moves; 480 kB after five (16,000 moves, minutes of colouring in). The bounds are above
that, and a fourth bound holds across sessions:

- the server: every session's last canvas state stays in its widget state (a parsed message takes about six
  times its JSON in memory). `CanvasBudget` counts the large ones that all sessions hold at once and refuses a
  new large one past MAX_HELD_BYTES; a drawing of a few strokes (under SMALL_BYTES) always passes. Sessions are
  held by weak reference, so a session Streamlit has let go of no longer counts.
"""

from __future__ import annotations

import binascii
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from vitdemo.preprocess.pipeline import load_image

MAX_PNG_BYTES = 1_000_000  # a 280x280 drawing is 2-30 kB; random noise at 280x280 RGBA is 314 kB
MAX_SIDE_FACTOR = 2  # the PNG may be up to twice the canvas's side (a high-density screen's export)
MAX_OBJECTS = 500  # strokes on one canvas
MAX_STROKES_JSON = 600_000  # the objects' size as JSON, in bytes (five minutes of scribbling: 480 kB)
SMALL_BYTES = 128_000  # a drawing this light is never refused by the server's budget (a 7: 10 kB)
MAX_HELD_BYTES = 16_000_000  # large canvas states all sessions hold at once (about 100 MB once parsed)
MAX_DEPTH = 8  # a Fabric path is 4 levels deep: objects -> object -> path -> command
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_END = object()  # an exhausted iterator in json_weight's walk


class CanvasRefused(ValueError):
    """What the canvas sent is not a drawing this server takes; `public` is one sentence for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


def json_weight(value: Any, limit: int, max_depth: int = MAX_DEPTH) -> int:
    """About the bytes of `value` written as JSON (numbers count 8, strings their length, each item its comma),
    counted only until `limit` is passed: the walk goes item by item and returns as soon as it is, and a list or
    dict whose items alone (at least 2 bytes each) would pass it is not walked at all, so a huge value costs no
    more than a small one. Anything deeper than `max_depth`, or not JSON, is refused (CanvasRefused)."""
    total, stack = 0, [iter((value,))]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        if len(stack) > max_depth + 1:
            raise CanvasRefused("The canvas sent strokes nested deeper than a drawing's: they were not used.")
        total += _scalar_weight(item)
        if isinstance(item, dict | list | tuple):
            if total + 2 * len(item) > limit:  # a comma and at least one character per item: a lower bound
                return total + 2 * len(item)
            total += len(item)  # the commas
            if isinstance(item, dict):
                total += sum(len(str(k)) + 3 for k in item)
            stack.append(iter(item.values() if isinstance(item, dict) else item))
        if total > limit:
            return total
    return total


def _scalar_weight(item: Any) -> int:
    if isinstance(item, str):
        return len(item) + 2
    if item is None or isinstance(item, bool | int | float):
        return 8
    if isinstance(item, dict | list | tuple):
        return 2
    raise CanvasRefused("The canvas sent something that is not a drawing: it was not used.")


def check_strokes(objects: Any) -> tuple[tuple[dict[str, Any], ...], int]:
    """The canvas's objects as a tuple of dicts, and their weight (about their bytes as JSON), once they are
    within MAX_OBJECTS and MAX_STROKES_JSON (CanvasRefused otherwise)."""
    if objects is None:
        return (), 0
    if not isinstance(objects, list | tuple) or not all(isinstance(o, dict) for o in objects[: MAX_OBJECTS + 1]):
        raise CanvasRefused("The canvas sent something that is not a drawing: it was not used.")
    if len(objects) > MAX_OBJECTS:
        raise CanvasRefused(
            f"That drawing has {len(objects):,} strokes, more than the {MAX_OBJECTS} a canvas takes: press Clear."
        )
    weight = json_weight(objects, MAX_STROKES_JSON)
    if weight > MAX_STROKES_JSON:
        raise CanvasRefused(
            f"That drawing's strokes are larger than a canvas takes ({MAX_STROKES_JSON // 1000:,} kB): press Clear."
        )
    return tuple(objects), weight


def decode_png(read: Callable[[], bytes | None], side: int) -> np.ndarray | None:
    """The canvas's image as (H, W, C) uint8, from `read()` (the component's PNG bytes; None before it sent any),
    within MAX_PNG_BYTES and (MAX_SIDE_FACTOR * side) pixels a side, checked before it is decoded
    (CanvasRefused otherwise, also for bytes that are not a PNG)."""
    try:
        data = read()
    except (ValueError, TypeError, AttributeError, binascii.Error):  # not a base64 data URL
        raise CanvasRefused("The canvas sent an image that is not a PNG: it was not used.") from None
    if data is None:
        return None
    if len(data) > MAX_PNG_BYTES:
        raise CanvasRefused(
            f"The canvas sent an image of {len(data) / 1e6:.1f} MB, more than a drawing's "
            f"{MAX_PNG_BYTES / 1e6:.0f} MB: it was not used."
        )
    if not data.startswith(PNG_MAGIC):
        raise CanvasRefused("The canvas sent an image that is not a PNG: it was not used.")
    largest = MAX_SIDE_FACTOR * side
    try:
        image = load_image(data, max_bytes=MAX_PNG_BYTES, max_pixels=largest * largest)
    except ValueError as exc:  # "The image is too large (8000x8000 pixels); the limit is 313,600 pixels."
        reason = str(exc)
        raise CanvasRefused(
            f"The canvas sent an image this server cannot use: {reason[:1].lower()}{reason[1:]}"
        ) from None
    if max(image.shape[:2]) > largest:
        raise CanvasRefused(f"The canvas sent an image wider than {largest} pixels: it was not used.")
    return image


class CanvasBudget:
    """The large canvas states that all sessions hold at once, within `total` bytes (thread-safe: sessions run in
    threads of one process). A session is any object it can hold weakly (the UI keeps one in its session state)."""

    def __init__(self, total: int = MAX_HELD_BYTES, small: int = SMALL_BYTES) -> None:
        self.total, self.small = total, small
        self._held: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def admit(self, session: object, weight: int) -> bool:
        """Whether `session` may hold a canvas state of `weight` bytes now (its earlier one is replaced): always
        for a small one, else while all sessions' large ones stay within `total`."""
        with self._lock:
            if weight <= self.small:
                self._held.pop(session, None)
                return True
            others = sum(w for s, w in self._held.items() if s is not session)
            if others + weight > self.total:
                return False
            self._held[session] = weight
            return True

    def release(self, session: object) -> None:
        with self._lock:
            self._held.pop(session, None)

    @property
    def held(self) -> int:
        with self._lock:
            return sum(self._held.values())


BUSY_MESSAGE = "The server holds as many large drawings as it can right now: press Clear and draw with fewer strokes."
