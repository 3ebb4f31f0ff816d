"""Any drawing or image of a written number -> the readers' 32x160 input, with its stages and the way back to the
image's pixels (the detector's boxes are given in the image's own pixels).

The first steps are the digit pipeline's (vitdemo.preprocess.pipeline): grey, light ink on dark, background
levelled, ruled lines removed, strokes kept; then the ink's box is scaled so that its height is a written digit's
on the training canvas (NUMBER_H px), narrower if the number is long, and centred on the canvas. Never raises for
an image it can decode: a blank one, a speck, something that is not handwriting or a number far longer than 8
digits comes back without an image and with one sentence saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from vitdemo.numbers import CANVAS_H, CANVAS_W, MAX_DIGITS
from vitdemo.preprocess.lines import remove_lines
from vitdemo.preprocess.pipeline import (
    MIN_CONTRAST,
    _background,
    _bbox,
    _strokes,
    load_image,
    looks_like_strokes,
    to_grayscale,
)

NUMBER_H = 21.0  # a digit's ink height on the canvas: MNIST's 20 px at the training numbers' mean scale (~1.05)
MARGIN = 3  # px kept free at the canvas's left and right
MAX_ASPECT = 1.3 * MAX_DIGITS  # wider than this (width / height) is far more than 8 digits (a digit: ~0.7 + gap)
MIN_EXTENT = 0.05  # a mark smaller than this share of the image's longer side is a speck

EMPTY = "Write a number (1 to 8 digits) to have it read."
SPECK = "That is only a dot or a speck: write a whole number of 1 to 8 digits."
NOT_WRITING = "That does not look like handwriting: write a number of 1 to 8 digits, or upload a photo of one."
TOO_LONG = "That is longer than the 8 digits the readers can read: write a shorter number."


@dataclass(frozen=True)
class NumberInput:
    image: np.ndarray | None  # (CANVAS_H, CANVAS_W) float32 in [0, 1], light ink on dark; None when refused
    stages: dict[str, np.ndarray]  # "input", ["lines_removed",] "crop", "canvas": 2-D float32 in [0, 1]
    message: str  # "" when there is a number to read; else the one sentence that says why not
    bbox: tuple[int, int, int, int] | None = None  # the ink's (top, left, bottom, right) in the input
    scale: float = 1.0  # canvas px per input px
    offset: tuple[float, float] = (0.0, 0.0)  # where the ink box's top-left corner sits on the canvas (x, y)

    def to_input_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A canvas box (x0, y0, x1, y1) -> the same box in the input image's pixels."""
        top, left = (self.bbox or (0, 0, 0, 0))[:2]
        ox, oy = self.offset
        x0, y0, x1, y1 = box
        return ((x0 - ox) / self.scale + left, (y0 - oy) / self.scale + top,
                (x1 - ox) / self.scale + left, (y1 - oy) / self.scale + top)  # fmt: skip


def _refused(stages: dict[str, np.ndarray], message: str, bbox=None) -> NumberInput:
    return NumberInput(None, stages, message, bbox)


def prepared_number(image: np.ndarray) -> NumberInput:
    """A number already in the readers' form (a test number: (CANVAS_H, CANVAS_W), light ink on black, uint8 or
    [0, 1]) as it is: the drawing checks are for drawings and photos, and refused 3 of 5 test numbers."""
    if image.shape != (CANVAS_H, CANVAS_W):
        raise ValueError(f"a prepared number is {CANVAS_H}x{CANVAS_W}, not {'x'.join(map(str, image.shape))}")
    gray = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)  # (CANVAS_H, CANVAS_W)
    return NumberInput(gray, {"input": gray, "canvas": gray}, "", (0, 0, CANVAS_H, CANVAS_W))


def preprocess_number(image: np.ndarray | bytes, *, threshold: float = 0.2) -> NumberInput:
    """A drawing or image (array or file bytes) -> the readers' input, or a sentence saying why there is none."""
    array = load_image(bytes(image)) if isinstance(image, bytes | bytearray | memoryview) else image
    gray = to_grayscale(array)  # (H, W)
    stages: dict[str, np.ndarray] = {"input": gray}
    bg = _background(gray)
    ink = (gray - bg) / np.maximum(1.0 - bg, 0.05)
    ink, lines = remove_lines(ink)
    if lines:
        stages["lines_removed"] = np.clip(ink, 0.0, 1.0)
    peak = float(ink.max())
    if not peak >= MIN_CONTRAST:
        return _refused(stages, EMPTY)
    ink = np.clip(ink / peak, 0.0, 1.0)
    mask = _strokes(ink, threshold)
    if not mask.any():
        return _refused(stages, SPECK)
    bbox = _bbox(mask)
    top, left, bottom, right = bbox
    h, w = bottom - top, right - left
    if max(h, w) < 3 or max(h, w) < MIN_EXTENT * max(gray.shape):
        return _refused(stages, SPECK, bbox)
    crop = np.where(mask[top:bottom, left:right], ink[top:bottom, left:right], 0.0).astype(np.float32)
    stages["crop"] = crop
    if w > MAX_ASPECT * h:  # before the strokes' check: twenty digits are many pieces, not noise
        return _refused(stages, TOO_LONG, bbox)
    if not looks_like_strokes(crop > 0):
        return _refused(stages, NOT_WRITING, bbox)
    scale = min(NUMBER_H / h, (CANVAS_W - 2 * MARGIN) / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop, mode="F").resize((nw, nh), Image.Resampling.BOX), dtype=np.float32)
    small = small / max(float(small.max()), 1e-6)  # a thin pen's ink stays full strength after shrinking
    canvas = np.zeros((CANVAS_H, CANVAS_W), dtype=np.float32)
    ox, oy = (CANVAS_W - nw) // 2, (CANVAS_H - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = small
    stages["canvas"] = canvas
    return NumberInput(canvas, stages, "", bbox, scale, (float(ox), float(oy)))
