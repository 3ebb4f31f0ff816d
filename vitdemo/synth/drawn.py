"""A check set of *drawn* digits, not from MNIST: strokes rendered with a round brush on a canvas like the app's.

Mouse drawings differ from MNIST: thicker or thinner strokes, off-centre, slanted, different sizes. Each
digit has a few hand-written stroke templates (unit-square polylines); every sample applies a random
slant, rotation, aspect, size, position and brush width, then renders white on a transparent 280x280
RGBA canvas, exactly what the drawing component returns. A generator beats stored images: the set is
reproducible from its seed and costs nothing in the repository.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Stroke = list[tuple[float, float]]  # points (x, y) in the unit square, y down


def arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int = 24) -> Stroke:
    """Points along an ellipse arc; angles in degrees, 0 = right, 90 = down (screen coordinates)."""
    ts = np.linspace(math.radians(start_deg), math.radians(end_deg), n)
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ts]


# Two or three common ways to write each digit, as a person would with a mouse.
TEMPLATES: dict[int, list[list[Stroke]]] = {
    0: [[arc(0.5, 0.5, 0.28, 0.42, -90, 275)], [arc(0.5, 0.5, 0.33, 0.4, -100, 262)]],
    1: [[[(0.5, 0.08), (0.5, 0.92)]], [[(0.32, 0.25), (0.52, 0.08), (0.52, 0.92)]]],
    2: [
        [arc(0.5, 0.3, 0.26, 0.22, 200, 360) + [(0.72, 0.42), (0.25, 0.9), (0.8, 0.9)]],
        [arc(0.48, 0.32, 0.27, 0.24, 190, 380) + [(0.22, 0.88), (0.78, 0.88)]],
    ],
    3: [
        [arc(0.48, 0.29, 0.24, 0.2, 200, 450) + arc(0.48, 0.71, 0.27, 0.22, -90, 160)],
        [[(0.25, 0.1), (0.72, 0.1), (0.45, 0.45)] + arc(0.47, 0.69, 0.27, 0.23, -80, 160)],
    ],
    4: [
        [[(0.62, 0.9), (0.62, 0.08), (0.18, 0.64), (0.82, 0.64)]],
        [[(0.28, 0.08), (0.24, 0.55), (0.78, 0.55)], [(0.66, 0.1), (0.66, 0.92)]],
    ],
    5: [
        [[(0.75, 0.1), (0.32, 0.1), (0.28, 0.45)] + arc(0.48, 0.66, 0.26, 0.24, -120, 150)],
        [[(0.3, 0.1), (0.27, 0.45)] + arc(0.48, 0.66, 0.26, 0.24, -120, 150), [(0.3, 0.1), (0.76, 0.1)]],
    ],
    6: [
        [[(0.68, 0.08), (0.45, 0.3)] + arc(0.5, 0.68, 0.24, 0.23, 200, 560)],
        [arc(0.75, 0.55, 0.48, 0.48, -120, -175, 10) + arc(0.5, 0.68, 0.23, 0.22, 180, 540)],
    ],
    7: [
        [[(0.18, 0.12), (0.8, 0.12), (0.4, 0.92)]],
        [[(0.2, 0.12), (0.78, 0.12), (0.45, 0.92)], [(0.38, 0.5), (0.72, 0.5)]],
    ],
    8: [
        [arc(0.5, 0.29, 0.2, 0.2, 90, 450) + arc(0.5, 0.71, 0.25, 0.21, -90, 270)],
        [arc(0.5, 0.28, 0.22, 0.19, 0, 360), arc(0.5, 0.71, 0.26, 0.22, -90, 270)],
    ],
    9: [
        [arc(0.48, 0.3, 0.22, 0.21, 0, 360) + [(0.7, 0.3), (0.66, 0.92)]],
        [arc(0.5, 0.3, 0.23, 0.2, -10, 350) + [(0.72, 0.3), (0.6, 0.92)]],
    ],
}


@dataclass(frozen=True)
class DrawnStyle:
    """The random choices behind one sample, in canvas units (280 px canvas)."""

    template: int
    slant: float  # horizontal shear, x += slant * (0.5 - y)
    rotation_deg: float
    height: float  # digit height as a fraction of the canvas
    aspect: float  # width scale relative to height
    center: tuple[float, float]  # digit centre as a fraction of the canvas
    width_px: float  # brush diameter


def random_style(label: int, rng: np.random.Generator) -> DrawnStyle:
    height = rng.uniform(0.35, 0.85)
    return DrawnStyle(
        template=int(rng.integers(len(TEMPLATES[label]))),
        slant=rng.uniform(-0.1, 0.35),  # people slant to the right more than to the left
        rotation_deg=rng.uniform(-10, 10),
        height=height,
        aspect=rng.uniform(0.8, 1.2),
        center=(
            rng.uniform(0.5 - (1 - height * 0.8) / 2, 0.5 + (1 - height * 0.8) / 2),
            rng.uniform(0.5 - (1 - height) / 2, 0.5 + (1 - height) / 2),
        ),
        width_px=rng.uniform(10, 30),
    )


def transform(stroke: Stroke, style: DrawnStyle, size: int) -> list[tuple[float, float]]:
    """Unit-square template points -> canvas pixels under the style's slant, rotation, size and position."""
    pts = np.asarray(stroke, dtype=np.float64) - 0.5  # (P, 2), centred
    pts[:, 0] = (pts[:, 0] - style.slant * pts[:, 1]) * style.aspect
    t = math.radians(style.rotation_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    pts = pts @ rot.T * style.height + np.asarray(style.center)
    return [(float(x) * size, float(y) * size) for x, y in pts]


def render(label: int, style: DrawnStyle, size: int = 280) -> np.ndarray:
    """One drawing as the canvas returns it: (size, size, 4) uint8, white strokes, transparent elsewhere."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    w = style.width_px
    for stroke in TEMPLATES[label][style.template]:
        pts = transform(stroke, style, size)
        draw.line(pts, fill=(255, 255, 255, 255), width=round(w), joint="curve")
        for x, y in (pts[0], pts[-1]):  # round caps, as a brush makes
            draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=(255, 255, 255, 255))
    return np.asarray(img)


def drawn_digits(per_class: int = 30, seed: int = 0, size: int = 280) -> Iterator[tuple[np.ndarray, int]]:
    """`per_class` drawings of each digit 0-9 (interleaved), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    for _ in range(per_class):
        for label in range(10):
            yield render(label, random_style(label, rng), size), label


def drawn_accuracy(models: dict, per_class: int = 30, seed: int = 0) -> dict[str, float]:
    """Accuracy of each loaded model on the drawn set, through the app's own preprocessing."""
    from vitdemo.explain.inference import analyze

    correct = dict.fromkeys(models, 0)
    total = 0
    for image, label in drawn_digits(per_class, seed):
        result = analyze(image, models, explain=False)
        total += 1
        for name, pred in result.predictions.items():
            correct[name] += int(pred.label == label)
    return {name: c / total for name, c in correct.items()}
