"""Readings the tests take of what the app makes: an image's centre of mass, an IDX file's array."""

from __future__ import annotations

import numpy as np

IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes (vitdemo.classset.export writes them)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass of a non-negative (H, W) image in index coordinates."""
    x = np.asarray(image, dtype=np.float64)
    total = x.sum()
    if total <= 0:
        raise ValueError("An image with no ink has no centre of mass.")
    rows, cols = np.indices(x.shape)
    return float((x * rows).sum() / total), float((x * cols).sum() / total)


def read_idx(data: bytes) -> np.ndarray:
    """IDX unsigned bytes back to an array (as MNIST readers do)."""
    if len(data) < 4 or data[:3] != bytes([0, 0, IDX_UBYTE]):
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
