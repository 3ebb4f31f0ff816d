"""The app's colours: the two models' (`MODEL_COLORS`) and the one colour map, for heat maps as images (`colorize`,
`overlay`) and as plotly colour scales.

matplotlib's 'inferno' (BIDS, CC0): perceptually uniform, dark to bright, readable in grey-scale print and by
most colour-blind viewers. The explanation overlays and the confusion matrix use the same table.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The theme's accent for the ViT, blue for the CNN: every chart that shows both models (the robustness sweep, the
# race) draws them in these, so the class learns them once.
MODEL_COLORS = {"vit": "#ff7a45", "cnn": "#5b8def"}

# 'inferno' sampled at entries 0, 16, ..., 240, 255 of its 256-entry table.
INFERNO_AT = np.array([0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 255]) / 255.0
INFERNO = np.array(
    [
        [0.001462, 0.000466, 0.013866],
        [0.042253, 0.028139, 0.141141],
        [0.129285, 0.047293, 0.290788],
        [0.238273, 0.036621, 0.396353],
        [0.341500, 0.062325, 0.429425],
        [0.441207, 0.099338, 0.431594],
        [0.540920, 0.134729, 0.415123],
        [0.640135, 0.171438, 0.381065],
        [0.735683, 0.215906, 0.330245],
        [0.822386, 0.275197, 0.266085],
        [0.894305, 0.353399, 0.193584],
        [0.946965, 0.449191, 0.115272],
        [0.978422, 0.557937, 0.034931],
        [0.987874, 0.675267, 0.065257],
        [0.974638, 0.797692, 0.206332],
        [0.947594, 0.917399, 0.410665],
        [0.988362, 0.998364, 0.644924],
    ]
)  # (17, 3) RGB in [0, 1]
# Streamlit reads the colours "#000001".."#0000xx" in a figure as placeholders for its theme's colours, so
# inferno's darkest "#000004" would paint every empty cell in a theme colour: this nearly black one stands in.
PLACEHOLDER_SAFE_BLACK = "#03020d"


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) heat in [0, 1] -> (H, W, 3) uint8 RGB with the 'inferno' colour map (NaN counts as 0)."""
    h = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.interp(h, INFERNO_AT, INFERNO[:, c]) for c in range(3)], axis=-1)  # (H, W, 3)
    return np.round(rgb * 255.0).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a grey image (H, W) ([0, 1] floats or uint8) with colorize(heat) -> (H, W, 3) uint8.

    `heat` (h, w) in [0, 1] is resized to (H, W) with bilinear interpolation when the sizes differ;
    `alpha` is the weight of the heat colours.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W) grey-scale, got shape {img.shape}")
    gray = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    gray = np.clip(np.nan_to_num(gray), 0.0, 1.0)
    heat = np.asarray(heat, dtype=np.float32)
    H, W = gray.shape
    if heat.shape != (H, W):
        heat = np.asarray(Image.fromarray(heat).resize((W, H), Image.Resampling.BILINEAR))
    color = colorize(heat).astype(np.float64) / 255.0  # (H, W, 3)
    blend = (1.0 - alpha) * gray[..., None] + alpha * color  # (H, W, 3)
    return np.round(np.clip(blend, 0.0, 1.0) * 255.0).astype(np.uint8)


def hex_color(rgb: np.ndarray) -> str:
    """(3,) RGB in [0, 1] -> '#rrggbb'."""
    r, g, b = (int(round(float(c) * 255.0)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def colorscale() -> list[tuple[float, str]]:
    """The table as a plotly colour scale [(position, '#rrggbb'), ...], theme placeholders avoided."""
    colors = [hex_color(rgb) for rgb in INFERNO]
    safe = [PLACEHOLDER_SAFE_BLACK if c.startswith("#0000") else c for c in colors]
    return [(float(at), c) for at, c in zip(INFERNO_AT, safe, strict=True)]


def _luminance(color: str) -> float:
    """WCAG relative luminance of '#rrggbb'."""
    rgb = np.array([int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def blend(color: str, background: str, opacity: float) -> str:
    """'#rrggbb' drawn at `opacity` over `background`, as the colour the eye sees."""
    fg, bg = (np.array([int(c.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0 for c in (color, background))
    return hex_color(opacity * fg + (1.0 - opacity) * bg)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two '#rrggbb' colours, 1 to 21 (a line needs 3 to be seen, text 4.5)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
