"""The class set's images: the drawing as submitted and its 28x28 model input, as PNG bytes, and the digest that
makes a drawing the same drawing (`vitdemo.classset.store.submit` is idempotent on it). No torch here."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

MAX_DRAWING_PX = 1024  # a larger drawing (a photo upload) is stored shrunk to this longer side


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def drawing_png(drawing: np.ndarray) -> bytes:
    """The drawing as submitted, as a PNG: uint8 grey, RGB or RGBA kept as they are (a float image in [0, 1] is
    scaled to uint8), shrunk to MAX_DRAWING_PX on its longer side if larger."""
    a = np.asarray(drawing)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(a)
    if max(image.size) > MAX_DRAWING_PX:
        image.thumbnail((MAX_DRAWING_PX, MAX_DRAWING_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def input_digest(image: np.ndarray) -> str:
    """Which drawing this is, for idempotent submits: the sha256 of its 28x28 uint8 input (what the models see)."""
    return hashlib.sha256(np.ascontiguousarray(input_uint8(image)).tobytes()).hexdigest()


def input_uint8(image: np.ndarray) -> np.ndarray:
    """The preprocessed (28, 28) float input in [0, 1] as MNIST stores it: uint8, ink 255 on a 0 background."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255).astype(np.uint8)


def read_input_png(path: str | os.PathLike) -> np.ndarray:
    """A stored 28x28 input back as (28, 28) uint8; ValueError for a file that is not one."""
    with Image.open(path) as img:
        a = np.array(img.convert("L"))
    if a.shape != (28, 28):
        raise ValueError(f"{Path(path).name} is {a.shape[1]}x{a.shape[0]} pixels, not 28x28")
    return a
