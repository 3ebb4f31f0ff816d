"""Pure helpers that turn arrays into things a page shows: pixel-exact upscaled stages, heat maps placed
back onto the drawing, the probability bar chart (plotly, and as HTML for the Present page), the prediction
headline, timing text. numpy, Pillow and plotly; no Streamlit."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image

from vitdemo.explain.readable import shown_map
from vitdemo.preprocess.pipeline import Preprocessed
from vitdemo.views.colors import colorscale

STAGE_CAPTIONS = {  # preprocessing stage -> what the audience is told it is (numbered as shown)
    "input": "your drawing",
    "lines_removed": "paper lines removed",  # only for ruled or squared paper
    "crop": "cropped",
    "fit20": "fitted to 20×20",
    "centered": "centred 28×28 (model input)",
}
ACCENT = "#ff7a45"  # the theme's primaryColor: the winning class
MUTED = "#5b6477"  # every other class
TEXT = "#f3f4f6"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] (or already uint8) image -> uint8, same shape."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    return np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W[, 3]) image -> uint8 with its longer side about `size` px, so a browser shows real pixels.

    Small images grow by a whole factor with nearest-neighbour (every pixel a crisp square); images
    already larger than `size` shrink with a box filter (a 280 px drawing, a photo).
    """
    a = to_uint8(image)
    h, w = a.shape[:2]
    longest = max(h, w)
    if longest <= size:
        k = max(1, size // longest)
        return np.repeat(np.repeat(a, k, axis=0), k, axis=1)  # (k*H, k*W[, 3])
    scale = size / longest
    new = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    return np.asarray(Image.fromarray(a).resize(new, Image.Resampling.BOX))


def pad_square(image: np.ndarray, fill: int = 0) -> np.ndarray:
    """(H, W[, 3]) uint8 -> (S, S[, 3]) with S = max(H, W), the image centred on `fill` (a letterbox)."""
    h, w = image.shape[:2]
    side = max(h, w)
    out = np.full((side, side, *image.shape[2:]), fill, dtype=image.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = image
    return out


def stage_images(pre: Preprocessed, size: int = 128) -> list[tuple[str, np.ndarray]]:
    """(caption, square uint8 image) for every preprocessing stage that exists, in pipeline order.

    Each stage is upscaled so its longer side is about `size`, then letterboxed to a square, so the strip
    shows every stage at the same size with its pixels as crisp squares.
    """
    shown = [(name, caption) for name, caption in STAGE_CAPTIONS.items() if name in pre.stages]
    return [
        (f"{i} · {caption}", pad_square(upscale(pre.stages[name], size))) for i, (name, caption) in enumerate(shown, 1)
    ]


def fit_offset(centered: np.ndarray, fit: np.ndarray) -> tuple[int, int]:
    """(top, left) where the (h, w) fitted digit sits inside the (28, 28) centred image.

    The centring pastes `fit` unchanged at a whole-pixel offset, so the offset is the one that matches
    exactly (or, if anything changed it, best).
    """
    windows = np.lib.stride_tricks.sliding_window_view(centered, fit.shape)  # (28-h+1, 28-w+1, h, w)
    err = np.abs(windows - fit).sum(axis=(2, 3))  # (28-h+1, 28-w+1)
    top, left = np.unravel_index(int(err.argmin()), err.shape)
    return int(top), int(left)


def shown_heat(kind: str, heat: np.ndarray) -> np.ndarray:
    """A model's (28, 28) map as the pages show it (vitdemo.explain.readable: gradient maps made readable)."""
    return shown_map(kind, heat)


def heat_on_input(heat: np.ndarray, pre: Preprocessed, max_side: int = 280) -> np.ndarray | None:
    """Map a (28, 28) heat map from model-input coordinates back onto the original drawing.

    The centred image is the drawing's bounding box scaled into the fitted box and shifted; this undoes
    both with one affine warp (bilinear); where the preprocessing thickened a very thin pen, the placement
    is off by that thickening (a pixel or two of the drawing). Returns float32 in [0, 1] shaped like the
    input stage, shrunk so its longer side is at most `max_side` (a photo need not be warped at full size),
    or None when the preprocessing did not get that far (an empty drawing).
    """
    if pre.bbox is None or "fit20" not in pre.stages or "centered" not in pre.stages:
        return None
    top, left, bottom, right = pre.bbox
    fit = pre.stages["fit20"]
    fit_top, fit_left = fit_offset(pre.stages["centered"], fit)
    sy = fit.shape[0] / max(bottom - top, 1)  # heat pixels per input pixel, rows
    sx = fit.shape[1] / max(right - left, 1)  # ... and columns
    H, W = pre.stages["input"].shape
    f = min(1.0, max_side / max(H, W))  # output pixels per input pixel
    size = (max(1, round(W * f)), max(1, round(H * f)))  # PIL wants (width, height)
    # PIL's AFFINE maps each output pixel (x, y) to the source (heat) pixel (a x + b y + c, d x + e y + f)
    coeffs = (sx / f, 0.0, fit_left - left * sx, 0.0, sy / f, fit_top - top * sy)
    src = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F")
    out = src.transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=0.0)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)  # (H', W')


def probability_figure(probs: np.ndarray, classes: Sequence[str], *, height: int = 250) -> go.Figure:
    """Horizontal bars for all classes (class 0 on top), the most probable one in the accent colour.

    Built in one constructor call on the empty "none" template: about 1.5 ms instead of 8-15 ms for the
    same figure made with the default template and update_layout() (this runs twice on every stroke).
    """
    probs = np.asarray(probs, dtype=np.float64)
    top = int(probs.argmax())
    bar = go.Bar(
        x=probs,
        y=list(classes),
        orientation="h",
        marker_color=[ACCENT if i == top else MUTED for i in range(len(probs))],
        text=[f"{p:.0%}" if p >= 0.01 else "" for p in probs],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    )
    layout = {
        "template": pio.templates["none"],
        "height": height,
        "margin": {"l": 8, "r": 48, "t": 4, "b": 4},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"size": 17, "color": TEXT},
        "bargap": 0.25,
        "showlegend": False,
        "xaxis": {"range": [0, 1], "visible": False, "fixedrange": True},
        "yaxis": {
            "autorange": "reversed",
            "type": "category",
            "fixedrange": True,
            "ticksuffix": "  ",
            "automargin": True,
        },
    }
    return go.Figure(bar, layout)


def timing_text(timings_ms: dict[str, float]) -> str:
    """'preprocess 1.2 ms · ViT 6.3 ms · CNN 3.0 ms · total 10.6 ms'."""
    return " · ".join(f"{name} {ms:.1f} ms" for name, ms in timings_ms.items())


# --- HTML for the Draw and Present pages (styled by the CSS in vitdemo/ui/shell.py and ui/present.py) ---------
LABEL_EM_PER_CHAR = 0.62  # the widest class names' width per character in the heavy headline font, in em


def label_html(label: str) -> str:
    """A class name as one unbreakable word that shrinks to fit its box: the headline font is at most
    100% of the box (CSS container units, `cqi`) divided by the name's width in em."""
    return (
        f'<span class="vd-label" style="--vd-chars:{max(len(label), 1) * LABEL_EM_PER_CHAR:.2f}">{escape(label)}</span>'
    )


def prediction_html(model: str, label: str, confidence: float, verdict: str = "") -> str:
    """'ViT predicts 7' with the label large, then '98.1% confident' (and `verdict`, trusted HTML).
    The aria-label is the sentence the browser tests and screen readers read."""
    return (
        f'<div class="vd-predbox" aria-label="{escape(model)} predicts {escape(label)}">'
        f'<p class="vd-pred">{escape(model)} predicts {label_html(label)}</p>'
        f'<p class="vd-conf">{confidence:.1%} confident{verdict}</p></div>'
    )


def percent_text(p: float) -> str:
    """'97%', '<1%' for a small non-zero probability, '0%' for none."""
    if p >= 0.01:
        return f"{p:.0%}"
    return "<1%" if p > 0 else "0%"


def probability_bars_html(probs: np.ndarray, classes: Sequence[str], *, title: str) -> str:
    """All classes as rows of name, bar and percentage (a CSS grid: names never wrap, the bars take the room
    left); the most probable one in the accent colour."""
    probs = np.asarray(probs, dtype=np.float64)
    top = int(probs.argmax())
    rows = []
    for i, (name, p) in enumerate(zip(classes, probs, strict=True)):
        cls = "vd-bar vd-top" if i == top else "vd-bar"
        rows.append(
            f'<div class="{cls}"><span class="vd-bar-name">{escape(str(name))}</span>'
            f'<span class="vd-bar-track"><span class="vd-bar-fill" style="width:{100 * p:.1f}%"></span></span>'
            f'<span class="vd-bar-pct">{escape(percent_text(float(p)))}</span></div>'
        )
    return f'<div class="vd-bars" role="group" aria-label="{escape(title)}">{"".join(rows)}</div>'


def png_data_uri(image: np.ndarray) -> str:
    """(H, W[, 3]) image -> 'data:image/png;base64,...' for an <img> in HTML."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def colour_scale_css() -> str:
    """The heat maps' colour map as a CSS gradient, left (low) to right (high)."""
    stops = ", ".join(f"{color} {100 * at:.0f}%" for at, color in colorscale())
    return f"linear-gradient(to right, {stops})"


def colour_scale_html(width_px: int, *, low: str = "ignored", high: str = "decisive") -> str:
    """The heat maps' colour scale on its own (inline styles: no page CSS needed), for maps shown as images."""
    bar = f"flex:1;height:0.7em;border-radius:0.2em;background:{colour_scale_css()}"
    return (
        f'<div class="vd-scale-inline" style="display:flex;align-items:center;gap:0.5em;max-width:{width_px}px;'
        f'font-size:0.85rem" aria-label="colour scale from {escape(low)} to {escape(high)}">'
        f'<span>{escape(low)}</span><span style="{bar}"></span><span>{escape(high)}</span></div>'
    )


def heat_map_html(image: np.ndarray, *, title: str, low: str = "ignored", high: str = "decisive") -> str:
    """An explanation overlay with its colour scale underneath: what dark and bright mean."""
    return (
        f'<figure class="vd-map" aria-label="{escape(title)}">'
        f'<img src="{png_data_uri(image)}" alt="{escape(title)}">'
        f'<div class="vd-scale" aria-label="colour scale from {escape(low)} to {escape(high)}">'
        f'<span>{escape(low)}</span><span class="vd-scale-bar" style="background:{colour_scale_css()}"></span>'
        f"<span>{escape(high)}</span></div></figure>"
    )
