"""The Draw page's extra opinions, drawn: one run's compact answer line, and logistic regression's weights as
ten templates with the predicted class's template highlighted. numpy and HTML; no Streamlit."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from vitdemo.views.display import ACCENT, label_html, upscale

FOR_RGB = np.array([235, 87, 87], dtype=np.float64)  # ink here votes for the class: red
AGAINST_RGB = np.array([91, 141, 239], dtype=np.float64)  # ink here votes against it: blue
ZERO_RGB = np.array([27, 31, 42], dtype=np.float64)  # no vote: the theme's secondary background
BACKGROUND_RGB = np.array([14, 17, 23], dtype=np.float64)  # the page: the frame of a template not picked
HIGHLIGHT_RGB = np.array([int(ACCENT[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)  # the winning class
DIM = 0.7  # the templates of the other classes are this bright, so the predicted one stands out
GAMMA = 0.5  # |weight| ** GAMMA: most weights are small next to the largest; this keeps them visible
TEMPLATE_CAPTION = (
    "Logistic regression adds up the ink under each class's template: red pixels vote for that class, blue ones "
    "against it, and the class with the highest total wins (outlined: its answer)."
)


def weight_colors(templates: np.ndarray) -> np.ndarray:
    """(C, H, W) weights -> (C, H, W, 3) uint8 on a diverging scale shared by all classes: red where ink votes
    for the class, blue against, dark where it does not matter (the largest |weight| of all is full colour; the
    scale is a square root, so that weaker votes still show)."""
    w = np.asarray(templates, dtype=np.float64)
    scale = float(np.abs(w).max())
    t = w / scale if scale > 0 else np.zeros_like(w)  # (C, H, W) in [-1, 1]
    t = np.sign(t) * np.abs(t) ** GAMMA
    pos, neg = np.clip(t, 0.0, 1.0)[..., None], np.clip(-t, 0.0, 1.0)[..., None]  # (C, H, W, 1)
    rgb = ZERO_RGB + pos * (FOR_RGB - ZERO_RGB) + neg * (AGAINST_RGB - ZERO_RGB)  # (C, H, W, 3)
    return np.round(rgb).astype(np.uint8)


def template_images(
    templates: np.ndarray, highlight: int | None, *, size: int = 56, frame: int = 3
) -> list[np.ndarray]:
    """Ten (or C) templates as images of about `size` px with a `frame` px border: the `highlight` class (the
    prediction) framed in the accent colour at full brightness, the others dimmed on a page-coloured frame."""
    images = []
    for i, rgb in enumerate(weight_colors(templates)):
        big = upscale(rgb, size).astype(np.float64)  # (k*H, k*W, 3), whole-pixel squares
        picked = i == highlight
        if not picked:
            big *= DIM
        border = HIGHLIGHT_RGB if picked else BACKGROUND_RGB
        out = np.empty((big.shape[0] + 2 * frame, big.shape[1] + 2 * frame, 3), dtype=np.float64)
        out[:] = border
        out[frame : frame + big.shape[0], frame : frame + big.shape[1]] = big
        images.append(np.round(out).astype(np.uint8))
    return images


def opinion_html(model: str, label: str, confidence: float, verdict: str = "") -> str:
    """One extra opinion's answer in a line: 'ResNet-18 predicts 7 · 93% confident' with the label large;
    `verdict` is trusted HTML (right / wrong). The aria-label is the sentence tests and screen readers read."""
    return (
        f'<div class="vd-predbox" style="--vd-label-max: 2.2rem" '
        f'aria-label="{escape(model)} predicts {escape(label)}">'
        f'<p class="vd-conf">{label_html(label)} &nbsp;{confidence:.1%} confident{verdict}</p></div>'
    )


def class_captions(classes: Sequence[str], probs: np.ndarray) -> list[str]:
    """Under each template: its class and the probability the model gives it ('7 · 93%')."""
    return [f"{name} · {p:.0%}" for name, p in zip(classes, np.asarray(probs, dtype=np.float64), strict=True)]
