"""The drawing pad's memory: the current drawing after each of its strokes (for Undo) and the last few drawings
(to go back to). Pure and immutable; the Draw and Present pages keep one `Sketchbook` in session state.

The canvas component cannot be told "remove the last stroke" or "show this image": it can only be built again
with an `initial_drawing` (its own Fabric.js objects). So every step keeps the canvas's objects, to rebuild the
canvas from, and its image as PNG bytes, so that the page can show the predictions at once, before the rebuilt
canvas has sent anything back.

Memory: a session's book is bounded by MAX_BOOK_BYTES, whatever its client sends. The objects are kept as
compressed JSON (parsed, a Fabric path takes about ten times its JSON in Python objects, and each step is a
new copy of every stroke), and the oldest steps, then the oldest drawings, go first when a book is over its
budget. A real drawing's step is a few kB; the budget holds the whole history of any drawing made by hand.
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

MAX_STEPS = 30  # strokes Undo can take back; each step is a few kB of PNG
MAX_GALLERY = 6  # earlier drawings kept as thumbnails
MAX_BOOK_BYTES = 1_500_000  # one session's history: PNGs and compressed strokes (a hand-made one: under 300 kB)
CanvasObjects = tuple[dict[str, Any], ...]  # the canvas's json_data["objects"]: one Fabric.js path per stroke


def pack_objects(objects: CanvasObjects) -> bytes:
    """The objects as compressed JSON: a few kB per stroke instead of tens of kB of Python lists and floats."""
    return zlib.compress(json.dumps(list(objects), separators=(",", ":"), sort_keys=True).encode(), 1)


def unpack_objects(packed: bytes) -> CanvasObjects:
    return tuple(json.loads(zlib.decompress(packed))) if packed else ()


def encode_png(image: np.ndarray) -> bytes:
    """(H, W[, C]) uint8 -> PNG bytes (lossless, a few kB for a drawing instead of 300 kB of RGBA)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> the uint8 array encode_png() was given."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


@dataclass(frozen=True, eq=False)
class Drawing:
    """One state of the canvas: its objects (to rebuild it) and its image (to analyse and show), both packed."""

    packed: bytes  # the objects: pack_objects()
    png: bytes

    @classmethod
    def from_canvas(cls, objects: CanvasObjects, image: np.ndarray) -> Drawing:
        return cls(pack_objects(objects), encode_png(image))

    @property
    def objects(self) -> CanvasObjects:
        return unpack_objects(self.packed)

    @property
    def nbytes(self) -> int:
        """What this step keeps in memory, about (the decoded image is cached only for the current drawing)."""
        return len(self.packed) + len(self.png)

    _thumbs: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # size -> thumbnail

    @property
    def image(self) -> np.ndarray:
        """(H, W, 4) uint8 RGBA, as the canvas sent it: decoded when asked (about 1 ms), never kept, so that a
        book's memory is its PNGs."""
        return decode_png(self.png)

    def thumbnail(self, size: int) -> np.ndarray:
        """(size, size) uint8 grey: the drawing shrunk with a box filter (thin strokes stay visible); kept, it is
        a few kB."""
        if size not in self._thumbs:
            gray = np.asarray(Image.fromarray(self.image).convert("L"))  # (H, W)
            self._thumbs[size] = np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BOX))
        return self._thumbs[size]


@dataclass(frozen=True)
class Sketchbook:
    """The canvas's history. `generation` names the canvas widget: it changes whenever the canvas must be built
    again from `base` (undo, clear, back to an earlier drawing, the pad shown on another page)."""

    steps: tuple[Drawing, ...] = ()  # the current drawing after each of its strokes, oldest first
    gallery: tuple[Drawing, ...] = ()  # earlier drawings, newest first
    base: CanvasObjects = ()  # the objects the current canvas widget was built with
    generation: int = 0

    @property
    def current(self) -> Drawing | None:
        return self.steps[-1] if self.steps else None

    @property
    def current_objects(self) -> CanvasObjects:
        return self.current.objects if self.current is not None else ()

    @property
    def nbytes(self) -> int:
        """The memory this book keeps, about: at most MAX_BOOK_BYTES (and the current drawing's decoded image)."""
        return sum(d.nbytes for d in (*self.steps, *self.gallery))

    def record(self, objects: CanvasObjects, image: np.ndarray | None) -> Sketchbook:
        """What the canvas sent this run. A fresh canvas sends nothing (image None), and one that sends what is
        already the current drawing changes nothing; anything else is a new stroke."""
        if image is None:
            return self
        packed = pack_objects(tuple(objects))
        if packed == (self.current.packed if self.current is not None else pack_objects(())):
            return self
        if not objects:  # the canvas was emptied from the browser
            return replace(self, steps=())
        steps = (*self.steps, Drawing(packed, encode_png(image)))[-MAX_STEPS:]
        return _within_budget(replace(self, steps=steps))

    def undo(self) -> Sketchbook:
        """Back one stroke: the canvas is rebuilt from the step before."""
        if not self.steps:
            return self
        return self._rebuilt(self.steps[:-1])

    def clear(self) -> Sketchbook:
        """A blank canvas; the drawing so far goes to the front of the gallery."""
        return replace(self._rebuilt(()), gallery=self._archived())

    def restore(self, index: int) -> Sketchbook:
        """Back to gallery[index]; the drawing it replaces goes to the gallery in its place."""
        if not 0 <= index < len(self.gallery):
            return self
        chosen = self.gallery[index]
        gallery = tuple(d for d in self._archived() if d.packed != chosen.packed)
        return replace(self._rebuilt((chosen,)), gallery=gallery[:MAX_GALLERY])

    def rebuild(self) -> Sketchbook:
        """A new canvas widget showing the current drawing (the old widget is gone, e.g. on another page)."""
        return self._rebuilt(self.steps)

    def needs_rebuild(self, widget_exists: bool) -> bool:
        """True when a canvas widget would not show the current drawing: the widget for this generation is gone
        (another page or input mode ran in between) and it would be built from other objects."""
        return not widget_exists and self.base != self.current_objects

    def _rebuilt(self, steps: tuple[Drawing, ...]) -> Sketchbook:
        base = steps[-1].objects if steps else ()
        return replace(self, steps=steps, base=base, generation=self.generation + 1)

    def _archived(self) -> tuple[Drawing, ...]:
        """The gallery with the current drawing in front (once: an equal drawing already there moves up)."""
        current = self.current
        if current is None:
            return self.gallery
        others = tuple(d for d in self.gallery if d.packed != current.packed)
        return (current, *others)[:MAX_GALLERY]


def _within_budget(book: Sketchbook, budget: int = MAX_BOOK_BYTES) -> Sketchbook:
    """`book` with its oldest steps, then its oldest earlier drawings, dropped until it keeps at most `budget`
    bytes; the current drawing always stays."""
    steps, gallery = list(book.steps), list(book.gallery)
    total = sum(d.nbytes for d in (*steps, *gallery))
    while total > budget and len(steps) > 1:
        total -= steps.pop(0).nbytes
    while total > budget and gallery:
        total -= gallery.pop().nbytes
    if len(steps) == len(book.steps) and len(gallery) == len(book.gallery):
        return book
    return replace(book, steps=tuple(steps), gallery=tuple(gallery))
